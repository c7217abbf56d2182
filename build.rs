//! The playground's browser files, embedded in the binary so that it works
//! offline and behind a strict Content-Security-Policy.
//!
//! GraphiQL, React and graphql-ws come from npm, installed with `npm ci`
//! from the committed `playground/package-lock.json` into `OUT_DIR` (never
//! into the source tree), once per lockfile: a rebuild with an unchanged
//! lockfile runs no npm. The page's own script and style sheet are
//! `playground/*.js|css`. Each file is embedded with its SHA-384 for the
//! page's `integrity` attributes. Without npm (or offline with an empty
//! npm cache) the binary still builds, and its page says how to fix that.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use sha2::{Digest, Sha384};

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// A file the page loads: its key in the page, its path, its media type.
struct Source {
    key: &'static str,
    path: &'static str,
    content_type: &'static str,
}

/// Paths inside `node_modules`, in the order the page loads them.
const NPM_FILES: &[Source] = &[
    Source {
        key: "react",
        path: "react/umd/react.production.min.js",
        content_type: JAVASCRIPT,
    },
    Source {
        key: "react-dom",
        path: "react-dom/umd/react-dom.production.min.js",
        content_type: JAVASCRIPT,
    },
    Source {
        key: "graphiql",
        path: "graphiql/graphiql.min.js",
        content_type: JAVASCRIPT,
    },
    Source {
        key: "graphiql-css",
        path: "graphiql/graphiql.min.css",
        content_type: CSS,
    },
    Source {
        key: "graphql-ws",
        path: "graphql-ws/umd/graphql-ws.min.js",
        content_type: JAVASCRIPT,
    },
];

/// The page's own files, paths from the crate root.
const OWN_FILES: &[Source] = &[
    Source {
        key: "playground-js",
        path: "playground/playground.js",
        content_type: JAVASCRIPT,
    },
    Source {
        key: "playground-css",
        path: "playground/playground.css",
        content_type: CSS,
    },
];

/// Set to `skip` to build without npm, as a machine without it would.
const SKIP_VARIABLE: &str = "CONTACTS_PLAYGROUND_ASSETS";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=playground/package.json");
    println!("cargo:rerun-if-changed=playground/package-lock.json");
    for own in OWN_FILES {
        println!("cargo:rerun-if-changed={}", own.path);
    }
    println!("cargo:rerun-if-env-changed={SKIP_VARIABLE}");

    let npm_files = match install(&manifest_dir.join("playground"), &out_dir.join("npm")) {
        Ok(files) => {
            let embedded: Vec<Embedded> = NPM_FILES
                .iter()
                .map(|source| Embedded::read(source, &files.join(source.key), source.path))
                .collect();
            Ok(embedded)
        }
        Err(reason) => {
            println!(
                "cargo:warning=the GraphQL playground is built without GraphiQL: {reason}. \
                 Install Node.js with npm, then `touch playground/package-lock.json` and build again."
            );
            Err(reason)
        }
    };
    // Embedded from copies in OUT_DIR, as the npm files are: a target
    // directory that several checkouts share never points at one that is
    // gone.
    let own_dir = out_dir.join("own");
    fs::create_dir_all(&own_dir).expect("OUT_DIR is writable");
    let own_files: Vec<Embedded> = OWN_FILES
        .iter()
        .map(|source| {
            let copy = own_dir.join(source.key);
            write_if_changed(&copy, &read(&manifest_dir.join(source.path)));
            Embedded::read(source, &copy, source.path)
        })
        .collect();
    let generated = generate(&own_files, &npm_files);
    write_if_changed(&out_dir.join("playground_assets.rs"), generated.as_bytes());
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}

/// Runs `npm ci` in `install_dir` with the committed manifest and lockfile,
/// unless the same lockfile was installed there already, and keeps the
/// files the page loads (in `files/`, named by their key) without the rest
/// of `node_modules`. Returns that folder, or why there is none.
fn install(playground: &Path, install_dir: &Path) -> Result<PathBuf, String> {
    if std::env::var(SKIP_VARIABLE).is_ok_and(|value| value == "skip") {
        return Err(format!("{SKIP_VARIABLE}=skip was set"));
    }
    let manifest = read(&playground.join("package.json"));
    let lockfile = read(&playground.join("package-lock.json"));
    let files = install_dir.join("files");
    // Written only once the files are in place: a marker that matches the
    // lockfile means they are this lockfile's.
    let installed_marker = install_dir.join("installed-package-lock.json");
    let installed = fs::read(&installed_marker).is_ok_and(|installed| installed == lockfile)
        && fs::read(install_dir.join("package.json")).is_ok_and(|copied| copied == manifest)
        && NPM_FILES
            .iter()
            .all(|source| files.join(source.key).is_file());
    if installed {
        return Ok(files);
    }

    let _ = fs::remove_file(&installed_marker);
    let _ = fs::remove_dir_all(&files);
    fs::create_dir_all(&files).expect("OUT_DIR is writable");
    fs::write(install_dir.join("package.json"), &manifest).expect("OUT_DIR is writable");
    fs::write(install_dir.join("package-lock.json"), &lockfile).expect("OUT_DIR is writable");
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let output = Command::new(npm)
        .args([
            "ci",
            "--ignore-scripts",
            "--prefer-offline",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "--loglevel=error",
        ])
        .current_dir(install_dir)
        .output()
        .map_err(|error| format!("npm could not be run ({error})"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last_lines: Vec<&str> = stderr.lines().rev().take(4).collect();
        let said: Vec<&str> = last_lines.into_iter().rev().collect();
        return Err(format!(
            "`npm ci` failed ({}): {}",
            output.status,
            said.join(" / ")
        ));
    }
    let node_modules = install_dir.join("node_modules");
    for source in NPM_FILES {
        fs::copy(node_modules.join(source.path), files.join(source.key)).map_err(|error| {
            format!(
                "`npm ci` installed no {} ({error}; did a package change its layout?)",
                source.path
            )
        })?;
    }
    // Some hundred megabytes the binary does not need.
    let _ = fs::remove_dir_all(&node_modules);
    fs::write(&installed_marker, &lockfile).expect("OUT_DIR is writable");
    Ok(files)
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// One file as the binary embeds it.
struct Embedded {
    key: &'static str,
    /// The name it is served under: the file name with a digest in it, so
    /// that it can be cached for good.
    served_name: String,
    content_type: &'static str,
    integrity: String,
    path: PathBuf,
}

impl Embedded {
    /// `path` holds the bytes; `original` names the file as its package does.
    fn read(source: &Source, path: &Path, original: &str) -> Embedded {
        let bytes = read(path);
        let digest = Sha384::digest(&bytes);
        let file_name = Path::new(original)
            .file_name()
            .and_then(|name| name.to_str())
            .expect("a file name");
        let (stem, extension) = file_name.rsplit_once('.').expect("a file extension");
        let short_digest: String = digest[..6]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Embedded {
            key: source.key,
            served_name: format!("{stem}.{short_digest}.{extension}"),
            content_type: source.content_type,
            integrity: format!(
                "sha384-{}",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
            path: path.canonicalize().expect("an embedded file's path"),
        }
    }

    fn rust(&self) -> String {
        format!(
            "    Asset {{ key: {:?}, name: {:?}, content_type: {:?}, integrity: {:?}, bytes: include_bytes!({:?}) }},\n",
            self.key,
            self.served_name,
            self.content_type,
            self.integrity,
            self.path.display().to_string(),
        )
    }
}

fn generate(own_files: &[Embedded], npm_files: &Result<Vec<Embedded>, String>) -> String {
    let mut code = String::from("// Written by build.rs.\n\n");
    code.push_str("/// The page's own script and style sheet.\n");
    code.push_str("pub static OWN_ASSETS: &[Asset] = &[\n");
    for file in own_files {
        code.push_str(&file.rust());
    }
    code.push_str("];\n\n");
    code.push_str(
        "/// GraphiQL, React and graphql-ws, or why the build has none.\n\
         pub static NPM_ASSETS: Result<&[Asset], &str> = ",
    );
    match npm_files {
        Ok(files) => {
            code.push_str("Ok(&[\n");
            for file in files {
                code.push_str(&file.rust());
            }
            code.push_str("]);\n");
        }
        Err(reason) => code.push_str(&format!("Err({reason:?});\n")),
    }
    code
}

/// Leaves the file alone when nothing changed, so nothing recompiles.
fn write_if_changed(path: &Path, contents: &[u8]) {
    if fs::read(path).is_ok_and(|existing| existing == contents) {
        return;
    }
    fs::write(path, contents).expect("OUT_DIR is writable");
}
