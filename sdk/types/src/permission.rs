//! Permission sets (lexicon `permission-set`) as static data for building OAuth scopes.
//!
//! The generator turns every `permission-set` lexicon into a `const` [`PermissionSet`]. An app
//! asks for the whole set with [`PermissionSet::include_scope`] (`include:<nsid>`), or expands it
//! into the granular `repo:` / `rpc:` scopes it grants with [`PermissionSet::granular_scopes`].

/// One `permission-set` lexicon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionSet {
    /// The NSID of the lexicon that defines the set.
    pub nsid: &'static str,
    /// `title`, shown to the user on the consent screen.
    pub title: Option<&'static str>,
    /// `title:lang`: translations of the title by language tag.
    pub title_lang: &'static [(&'static str, &'static str)],
    /// `detail`, a longer description.
    pub detail: Option<&'static str>,
    /// `detail:lang`: translations of the detail by language tag.
    pub detail_lang: &'static [(&'static str, &'static str)],
    /// The permissions the set grants.
    pub permissions: &'static [Permission],
}

/// An action on records that a `repo` permission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RepoAction {
    /// Create records.
    Create,
    /// Update records.
    Update,
    /// Delete records.
    Delete,
}

impl RepoAction {
    /// The action as written in lexicons and scopes.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoAction::Create => "create",
            RepoAction::Update => "update",
            RepoAction::Delete => "delete",
        }
    }
}

/// One permission of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Write access to records of the given collections.
    Repo {
        /// Collection NSIDs.
        collections: &'static [&'static str],
        /// Allowed actions; empty means all three (the lexicon default).
        actions: &'static [RepoAction],
    },
    /// Calls to the given XRPC methods.
    Rpc {
        /// Method NSIDs (`lxm`), or `*`.
        lxm: &'static [&'static str],
        /// A fixed audience (`aud`), typically `*`.
        aud: Option<&'static str>,
        /// Whether the audience comes from the `include:` scope (`inheritAud`).
        inherit_aud: bool,
    },
    /// A resource this version does not know; access control ignores it (lexicon rule).
    Other {
        /// The resource name.
        resource: &'static str,
    },
}

impl PermissionSet {
    /// The scope that asks for this whole set: `include:<nsid>`, with `?aud=` when given
    /// (the audience inherited by `rpc` permissions with `inheritAud`).
    pub fn include_scope(&self, aud: Option<&str>) -> String {
        match aud {
            Some(aud) => format!("include:{}?aud={}", self.nsid, encode_param(aud)),
            None => format!("include:{}", self.nsid),
        }
    }

    /// The granular scopes this set grants, one per collection or method.
    ///
    /// `aud` is the audience used for `rpc` permissions that inherit it; such permissions are
    /// skipped when it is `None`. Unknown resources are ignored.
    pub fn granular_scopes(&self, aud: Option<&str>) -> Vec<String> {
        let mut scopes = Vec::new();
        for permission in self.permissions {
            match permission {
                Permission::Repo {
                    collections,
                    actions,
                } => {
                    let all = actions.is_empty()
                        || [RepoAction::Create, RepoAction::Update, RepoAction::Delete]
                            .iter()
                            .all(|a| actions.contains(a));
                    for collection in *collections {
                        if all {
                            scopes.push(format!("repo:{collection}"));
                        } else {
                            let query: Vec<String> = actions
                                .iter()
                                .map(|a| format!("action={}", a.as_str()))
                                .collect();
                            scopes.push(format!("repo:{collection}?{}", query.join("&")));
                        }
                    }
                }
                Permission::Rpc {
                    lxm,
                    aud: fixed,
                    inherit_aud,
                } => {
                    let audience = match (fixed, inherit_aud) {
                        (Some(fixed), _) => Some(*fixed),
                        (None, true) => aud,
                        (None, false) => None,
                    };
                    if let Some(audience) = audience {
                        for method in *lxm {
                            scopes.push(format!("rpc:{method}?aud={}", encode_param(audience)));
                        }
                    }
                }
                Permission::Other { .. } => {}
            }
        }
        scopes
    }
}

/// Percent-encodes the characters of a scope parameter value that have a meaning in scopes.
fn encode_param(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '#' => out.push_str("%23"),
            '&' => out.push_str("%26"),
            '?' => out.push_str("%3F"),
            '%' => out.push_str("%25"),
            ' ' => out.push_str("%20"),
            '+' => out.push_str("%2B"),
            '=' => out.push_str("%3D"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: PermissionSet = PermissionSet {
        nsid: "com.example.auth",
        title: Some("Example"),
        title_lang: &[("fr", "Exemple")],
        detail: None,
        detail_lang: &[],
        permissions: &[
            Permission::Repo {
                collections: &["com.example.a", "com.example.b"],
                actions: &[RepoAction::Create],
            },
            Permission::Repo {
                collections: &["com.example.c"],
                actions: &[],
            },
            Permission::Rpc {
                lxm: &["com.example.get"],
                aud: None,
                inherit_aud: true,
            },
            Permission::Rpc {
                lxm: &["*"],
                aud: Some("*"),
                inherit_aud: false,
            },
            Permission::Other { resource: "future" },
        ],
    };

    #[test]
    fn scopes() {
        assert_eq!(SET.include_scope(None), "include:com.example.auth");
        assert_eq!(
            SET.include_scope(Some("did:web:api.example.com#svc")),
            "include:com.example.auth?aud=did:web:api.example.com%23svc"
        );
        assert_eq!(
            SET.granular_scopes(Some("did:web:x#y")),
            vec![
                "repo:com.example.a?action=create",
                "repo:com.example.b?action=create",
                "repo:com.example.c",
                "rpc:com.example.get?aud=did:web:x%23y",
                "rpc:*?aud=*",
            ]
        );
        assert_eq!(SET.granular_scopes(None).len(), 4);
    }
}
