//! The files the playground page loads, embedded by `build.rs`.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// What the page calls it (`graphiql`, `react`, `playground-js`...).
    pub key: &'static str,
    /// The file name it is served under, with a digest of its bytes in it.
    pub name: &'static str,
    pub content_type: &'static str,
    /// `sha384-<base64>`, for the page's `integrity` attributes.
    pub integrity: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/playground_assets.rs"));

/// The files of this build: GraphiQL's when npm installed them, or why not.
#[derive(Clone, Copy, Debug)]
pub struct Bundle {
    pub own: &'static [Asset],
    pub npm: Result<&'static [Asset], &'static str>,
}

impl Bundle {
    pub fn built() -> Bundle {
        Bundle {
            own: OWN_ASSETS,
            npm: NPM_ASSETS,
        }
    }

    /// A file the page may load, by its served name.
    pub fn find(&self, name: &str) -> Option<&'static Asset> {
        let npm = self.npm.unwrap_or(&[]);
        self.own.iter().chain(npm).find(|asset| asset.name == name)
    }
}
