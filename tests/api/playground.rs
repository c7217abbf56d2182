//! The playground page: GraphiQL from this server's own paths, under a
//! policy that allows nothing else, with integrity hashes of what it serves.

use base64::Engine;
use sha2::{Digest, Sha384};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn page(app: &TestApp) -> reqwest::Response {
    app.client
        .get(format!("{}/graphql", app.address))
        .header("accept", BROWSER_ACCEPT)
        .send()
        .await
        .unwrap()
}

/// `(url, integrity)` of every script and style sheet the page loads; its
/// only other link, the icon, is an empty `data:` URL, which loads nothing.
fn loaded_files(page: &str) -> Vec<(String, String)> {
    page.split('<')
        .filter(|tag| {
            assert!(
                !tag.starts_with("link rel=\"icon\"")
                    || tag.starts_with("link rel=\"icon\" href=\"data:,\""),
                "<{tag}"
            );
            tag.starts_with("script") || tag.starts_with("link rel=\"stylesheet\"")
        })
        .map(|tag| {
            let attribute = |name: &str| {
                let start = tag
                    .find(&format!(" {name}=\""))
                    .unwrap_or_else(|| panic!("{name} in <{tag}"))
                    + name.len()
                    + 3;
                tag[start..][..tag[start..].find('"').unwrap()].to_owned()
            };
            let url = if tag.starts_with("script") {
                attribute("src")
            } else {
                attribute("href")
            };
            (url, attribute("integrity"))
        })
        .collect()
}

fn policy(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-security-policy")
        .expect("a Content-Security-Policy")
        .to_str()
        .unwrap()
        .to_owned()
}

fn assert_self_only(policy: &str) {
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
    assert!(!policy.contains("http"), "no other origin: {policy}");
}

#[tokio::test]
async fn a_browser_gets_graphiql_from_this_server_with_integrity_hashes() {
    let app = spawn_app().await;
    let response = page(&app).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let page_policy = policy(&response);
    assert_self_only(&page_policy);
    let body = response.text().await.unwrap();

    let built_without_npm = option_env!("CONTACTS_PLAYGROUND_ASSETS") == Some("skip");
    if built_without_npm {
        assert!(body.contains("id=\"playground-unavailable\""), "{body}");
    } else {
        assert!(
            body.contains("id=\"graphiql\" data-endpoint=\"/graphql\""),
            "GraphiQL, not the page of a build without npm (see the build's warning): {body}"
        );
        assert!(!body.contains("<script>"), "no inline script: {body}");
        // The nonce for the dialogs' <style> elements is the policy's own.
        let nonce_start = body.find("nonce=\"").expect("a style nonce") + 7;
        let nonce = &body[nonce_start..][..body[nonce_start..].find('"').unwrap()];
        assert!(
            page_policy.contains(&format!("style-src 'self' 'nonce-{nonce}'")),
            "{page_policy}"
        );
    }

    let files = loaded_files(&body);
    let names: Vec<&str> = files.iter().map(|(url, _)| url.as_str()).collect();
    if !built_without_npm {
        for expected in [
            "react.production.min",
            "react-dom.production.min",
            "graphiql.min",
            "graphql-ws.min",
            "playground.",
        ] {
            assert!(
                names.iter().any(|name| name.contains(expected)),
                "{expected} in {names:?}"
            );
        }
    }
    for (url, integrity) in &files {
        assert!(url.starts_with("/playground/assets/"), "{url}");
        let served = app
            .client
            .get(format!("{}{url}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), 200, "{url}");
        assert_self_only(&policy(&served));
        assert_eq!(served.headers()["x-content-type-options"], "nosniff");
        let expected_type = if url.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(served.headers()["content-type"], expected_type, "{url}");
        assert!(
            served.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable"),
            "{url}"
        );
        let bytes = served.bytes().await.unwrap();
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha384::digest(&bytes));
        assert_eq!(integrity, &format!("sha384-{digest}"), "{url}");
    }

    let missing = app
        .client
        .get(format!("{}/playground/assets/nothing.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn with_the_playground_off_there_is_no_page_and_no_file() {
    let on = spawn_app().await;
    let body = page(&on).await.text().await.unwrap();
    let files = loaded_files(&body);
    assert!(!files.is_empty());

    let off = spawn_app_with(|settings| settings.playground = false).await;
    let response = page(&off).await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("playground is off"),);
    for (url, _) in files {
        let served = off
            .client
            .get(format!("{}{url}", off.address))
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), 404, "{url}");
    }
    // The API itself still answers, GET included.
    let answer = off
        .client
        .get(format!("{}/graphql", off.address))
        .query(&[("query", "{ __typename }")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}
