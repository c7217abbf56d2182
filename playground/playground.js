// The playground page: GraphiQL mounted on #graphiql, talking to this
// server. Queries and mutations go over POST to the endpoint named by
// #graphiql's data-endpoint, subscriptions over graphql-ws
// (graphql-transport-ws) to the same path. Both carry the headers of the
// headers editor: the websocket sends them as its connection_init payload,
// which is where the server looks for a websocket's token.
//
// A file of its own, not an inline script: the page's Content-Security-Policy
// allows scripts from this server's own paths only.
(function () {
  'use strict';

  // The headers editor's text, kept for the browser tab's lifetime so that a
  // reload keeps the token (sessionStorage: gone when the tab closes).
  var HEADERS_KEY = 'contacts-playground:headers';
  var HEADERS_HINT = '{\n  "Authorization": "Bearer "\n}';

  var container = document.getElementById('graphiql');
  var endpoint = container.getAttribute('data-endpoint');
  var socketUrl = new URL(endpoint, window.location.href);
  socketUrl.protocol = socketUrl.protocol === 'https:' ? 'wss:' : 'ws:';

  function storedHeaders() {
    try {
      return window.sessionStorage.getItem(HEADERS_KEY);
    } catch (blocked) {
      return null;
    }
  }

  function storeHeaders(headers) {
    try {
      window.sessionStorage.setItem(HEADERS_KEY, JSON.stringify(headers, null, 2));
    } catch (blocked) {
      // Storage is off in this browser: the headers live in the editor only.
    }
  }

  // The operations of a document, read from its text: GraphiQL's parsed
  // document can lag behind the editor by a keystroke. Strings and comments
  // are skipped; a `{` outside any operation, fragment or parentheses
  // starts an anonymous query.
  function operationsIn(text) {
    var tokens = text.match(/"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n\r]*|[A-Za-z_][A-Za-z0-9_]*|[{}()]/g) || [];
    var operations = [];
    var braces = 0;
    var parentheses = 0;
    var pending = null;
    for (var index = 0; index < tokens.length; index++) {
      var token = tokens[index];
      if (token === '(') {
        parentheses++;
      } else if (token === ')') {
        parentheses--;
      } else if (token === '{') {
        if (braces === 0 && parentheses === 0) {
          var started = pending || { kind: 'query', name: null };
          if (started.kind !== 'fragment') {
            operations.push(started);
          }
          pending = null;
        }
        braces++;
      } else if (token === '}') {
        braces--;
      } else if (braces === 0 && parentheses === 0 && /^[A-Za-z_]/.test(token)) {
        if (!pending && /^(query|mutation|subscription|fragment)$/.test(token)) {
          var next = tokens[index + 1];
          pending = { kind: token, name: next && /^[A-Za-z_]/.test(next) && next !== 'on' ? next : null };
        }
      }
    }
    return operations;
  }

  // Which kind of operation would run: the named one, or the only one.
  function operationType(query, operationName) {
    var operations = operationsIn(query || '');
    var chosen = operationName
      ? operations.find(function (operation) {
          return operation.name === operationName;
        })
      : operations.length === 1
        ? operations[0]
        : null;
    return chosen ? chosen.kind : null;
  }

  function post(params, headers) {
    return window
      .fetch(endpoint, {
        method: 'POST',
        headers: Object.assign(
          {
            'Content-Type': 'application/json',
            Accept: 'application/graphql-response+json, application/json',
          },
          headers
        ),
        body: JSON.stringify(params),
        credentials: 'same-origin',
      })
      .then(function (response) {
        return response.json();
      });
  }

  // One websocket per set of headers: a changed token needs a new
  // connection_init, so the old connection goes.
  var socket = null;
  var socketHeaders = null;

  function socketFor(headers) {
    var key = JSON.stringify(headers);
    if (socket && key === socketHeaders) {
      return socket;
    }
    if (socket) {
      socket.dispose();
    }
    socketHeaders = key;
    socket = graphqlWs.createClient({
      url: socketUrl.href,
      connectionParams: headers,
      lazy: true,
      retryAttempts: 0,
    });
    return socket;
  }

  // A close event shows as "{}" in GraphiQL; say what it means instead.
  function readable(error) {
    if (error && typeof error.code === 'number' && 'reason' in error) {
      var hint =
        error.code === 4403
          ? ': the server refused connection_init; put a live agent token in the Authorization header'
          : error.reason
            ? ': ' + error.reason
            : '';
      return new Error('the websocket closed with code ' + error.code + hint);
    }
    return error;
  }

  function subscription(params, headers) {
    return {
      subscribe: function (observer) {
        var unsubscribe = socketFor(headers).subscribe(params, {
          next: function (result) {
            observer.next(result);
          },
          error: function (error) {
            observer.error(readable(error));
          },
          complete: function () {
            observer.complete();
          },
        });
        return { unsubscribe: unsubscribe };
      },
    };
  }

  // GraphiQL names the operation from its parsed document, which lags
  // behind the editor: a document pasted and run at once arrives with the
  // name of the operation it replaced. A name the text does not hold, beside
  // a text of one operation, means that one.
  function withCurrentOperationName(params) {
    if (!params.operationName) {
      return params;
    }
    var operations = operationsIn(params.query || '');
    var named = operations.some(function (operation) {
      return operation.name === params.operationName;
    });
    if (named || operations.length !== 1) {
      return params;
    }
    var current = Object.assign({}, params);
    if (operations[0].name) {
      current.operationName = operations[0].name;
    } else {
      delete current.operationName;
    }
    return current;
  }

  function fetcher(graphiqlParams, options) {
    var headers = (options && options.headers) || {};
    storeHeaders(headers);
    var params = withCurrentOperationName(graphiqlParams);
    var kind = operationType(params.query, params.operationName);
    return kind === 'subscription' ? subscription(params, headers) : post(params, headers);
  }

  // The dialogs' scroll lock adds <style> elements, which the page's policy
  // allows with the nonce its own style sheet carries; the library that adds
  // them reads it from this global.
  var styleNonce = document.getElementById('playground-style');
  if (styleNonce && styleNonce.nonce) {
    window.__webpack_nonce__ = styleNonce.nonce;
  }

  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      headers: storedHeaders() || HEADERS_HINT,
      defaultEditorToolsVisibility: 'headers',
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
    })
  );
})();
