//! The HTML of the playground page, and of the page that stands in for it
//! in a build without GraphiQL.

use super::ASSETS_PATH;
use super::assets::{Asset, Bundle};

/// Scripts in the order they must run: React before what uses it, the
/// page's own script last.
const SCRIPTS: [&str; 5] = [
    "react",
    "react-dom",
    "graphiql",
    "graphql-ws",
    "playground-js",
];
const STYLE_SHEETS: [&str; 2] = ["graphiql-css", "playground-css"];

/// The page for `endpoint`: GraphiQL, or what to do to get it.
/// `style_nonce` is the nonce of the response's policy for the `<style>`
/// elements GraphiQL's dialogs add; the page's own style sheet carries it,
/// where the page script finds it.
pub fn render(bundle: &Bundle, endpoint: &str, style_nonce: &str) -> String {
    match bundle.npm {
        Ok(npm) => graphiql_page(bundle.own, npm, endpoint, style_nonce),
        Err(reason) => unavailable_page(bundle.own, reason),
    }
}

fn graphiql_page(own: &[Asset], npm: &[Asset], endpoint: &str, style_nonce: &str) -> String {
    let find = |key: &str| {
        own.iter()
            .chain(npm)
            .find(|asset| asset.key == key)
            .unwrap_or_else(|| panic!("build.rs embeds the playground file {key}"))
    };
    let style_sheets: String = STYLE_SHEETS
        .iter()
        .map(|key| {
            let asset = find(key);
            let nonce = if *key == "playground-css" {
                format!(" id=\"playground-style\" nonce=\"{}\"", escape(style_nonce))
            } else {
                String::new()
            };
            format!(
                "    <link rel=\"stylesheet\" href=\"{ASSETS_PATH}/{}\" integrity=\"{}\"{nonce}>\n",
                asset.name, asset.integrity
            )
        })
        .collect();
    let scripts: String = SCRIPTS
        .iter()
        .map(|key| {
            let asset = find(key);
            format!(
                "    <script src=\"{ASSETS_PATH}/{}\" integrity=\"{}\"></script>\n",
                asset.name, asset.integrity
            )
        })
        .collect();
    // The empty icon keeps browsers from asking for /favicon.ico, which this
    // server does not have: a 404 in every visitor's console otherwise.
    format!(
        "<!doctype html>\n\
         <html lang=\"en\">\n  <head>\n\
         \x20   <meta charset=\"utf-8\">\n\
         \x20   <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         \x20   <title>Contacts API · GraphiQL</title>\n\
         \x20   <link rel=\"icon\" href=\"data:,\">\n\
         {style_sheets}\
         \x20 </head>\n  <body>\n\
         \x20   <div id=\"graphiql\" data-endpoint=\"{}\">Loading GraphiQL…</div>\n\
         \x20   <noscript>GraphiQL needs JavaScript.</noscript>\n\
         {scripts}\
         \x20 </body>\n</html>\n",
        escape(endpoint)
    )
}

fn unavailable_page(own: &[Asset], reason: &str) -> String {
    let style_sheet = own
        .iter()
        .find(|asset| asset.key == "playground-css")
        .map(|asset| {
            format!(
                "    <link rel=\"stylesheet\" href=\"{ASSETS_PATH}/{}\" integrity=\"{}\">\n",
                asset.name, asset.integrity
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html>\n\
         <html lang=\"en\">\n  <head>\n\
         \x20   <meta charset=\"utf-8\">\n\
         \x20   <title>Contacts API · playground unavailable</title>\n\
         {style_sheet}\
         \x20 </head>\n  <body>\n\
         \x20   <main id=\"playground-unavailable\">\n\
         \x20     <h1>This build has no GraphQL playground</h1>\n\
         \x20     <p>GraphiQL's files are fetched with npm when the server is built, and this build could not: <span id=\"playground-build-problem\">{}</span>.</p>\n\
         \x20     <p>To get the playground, install Node.js (18 or later) with npm, make sure npm can reach its package registry (or has the packages in its cache), and rebuild:</p>\n\
         \x20     <pre><code>touch playground/package-lock.json\ncargo build</code></pre>\n\
         \x20     <p>The API works without it: send queries to <code>POST /graphql</code>.</p>\n\
         \x20   </main>\n\
         \x20 </body>\n</html>\n",
        escape(reason)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn asset(key: &'static str, name: &'static str) -> Asset {
        Asset {
            key,
            name,
            content_type: "text/javascript; charset=utf-8",
            integrity: "sha384-test",
            bytes: b"",
        }
    }

    static OWN: [Asset; 2] = [
        asset("playground-js", "playground.1.js"),
        asset("playground-css", "playground.2.css"),
    ];
    static NPM: [Asset; 5] = [
        asset("react", "react.3.js"),
        asset("react-dom", "react-dom.4.js"),
        asset("graphiql", "graphiql.5.js"),
        asset("graphiql-css", "graphiql.6.css"),
        asset("graphql-ws", "graphql-ws.7.js"),
    ];

    #[test]
    fn the_page_loads_react_first_and_its_own_script_last() {
        let bundle = Bundle {
            own: &OWN,
            npm: Ok(&NPM),
        };
        let page = render(&bundle, "/graphql", "n0nce");
        let position = |name: &str| {
            page.find(&format!("{ASSETS_PATH}/{name}\" integrity=\"sha384-test\""))
                .unwrap_or_else(|| panic!("{name} in {page}"))
        };
        assert!(position("react.3.js") < position("react-dom.4.js"));
        assert!(position("react-dom.4.js") < position("graphiql.5.js"));
        assert!(position("graphql-ws.7.js") < position("playground.1.js"));
        assert!(position("graphiql.6.css") < position("playground.2.css"));
        assert!(
            page.contains("id=\"playground-style\" nonce=\"n0nce\""),
            "{page}"
        );
        assert!(page.contains("id=\"graphiql\" data-endpoint=\"/graphql\""));
        assert!(!page.contains("<script>"), "no inline script: {page}");
    }

    #[test]
    fn a_build_without_npm_says_what_to_install_and_how_to_rebuild() {
        let bundle = Bundle {
            own: &OWN,
            npm: Err("npm could not be run (No such file or directory <os error 2>)"),
        };
        let page = render(&bundle, "/graphql", "n0nce");
        assert!(page.contains("id=\"playground-unavailable\""), "{page}");
        assert!(page.contains("Node.js"), "{page}");
        assert!(page.contains("touch playground/package-lock.json\ncargo build"));
        assert!(
            page.contains("No such file or directory &lt;os error 2&gt;"),
            "the reason, escaped: {page}"
        );
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("playground.2.css"), "{page}");
    }
}
