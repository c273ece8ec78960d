//! `fetch`: resolve, download, verify, write and pin (see the [crate docs](crate)).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use atlex::identity::IdentityResolver;
use atlex::net::fetch::{Fetcher, Get};
use atlex::types::crypto::PublicKey;
use atlex::types::{Did, Nsid};
use serde_json::Value;
use url::Url;

use crate::manifest::{MANIFEST, Manifest, Pin};
use crate::proof::{self, Proven};
use crate::record;
use crate::{Error, SCHEMA_COLLECTION, document_path, sha256_hex};

/// The default limit of one record answer (lexicon documents are a few KiB; the largest
/// official one is under 40 KiB).
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 256 * 1024;
/// The default number of ref hops followed from the NSIDs asked for.
pub const DEFAULT_MAX_DEPTH: usize = 8;
/// The default number of documents one run may fetch.
pub const DEFAULT_MAX_DOCS: usize = 500;
/// Records per `listRecords` page.
const PAGE: usize = 100;

/// What to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One NSID.
    Nsid(Nsid),
    /// `AUTHORITY.*`: every record of the authority `AUTHORITY` (NSIDs `AUTHORITY.<name>`).
    Pattern {
        /// The authority, e.g. `com.example.feed` for `com.example.feed.*`.
        authority: String,
    },
}

impl Target {
    /// Parses `NSID` or `AUTHORITY.*`.
    pub fn parse(text: &str) -> Result<Target, String> {
        if let Some(authority) = text.strip_suffix(".*") {
            // The authority is valid when an NSID under it is.
            Nsid::new(format!("{authority}.x")).map_err(|error| {
                format!("`{text}`: `{authority}` is not an NSID authority ({error})")
            })?;
            if !authority.contains('.') {
                return Err(format!(
                    "`{text}`: an authority has at least two segments (e.g. `com.example.*`)"
                ));
            }
            return Ok(Target::Pattern {
                authority: authority.to_owned(),
            });
        }
        if text.contains('*') {
            return Err(format!(
                "`{text}`: only a trailing `.*` is a pattern (`com.example.feed.*`)"
            ));
        }
        Nsid::new(text)
            .map(Target::Nsid)
            .map_err(|error| format!("`{text}` is not an NSID: {error}"))
    }
}

/// Options of [`fetch`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// NSIDs and patterns.
    pub targets: Vec<Target>,
    /// The output folder (created when missing).
    pub into: PathBuf,
    /// The DNS server for `_lexicon` TXT lookups (default: the system's).
    pub dns: Option<SocketAddr>,
    /// The PLC directory (default `https://plc.directory`).
    pub plc: Option<String>,
    /// A folder of lexicons whose NSIDs are not fetched when referred to (the official
    /// lexicons, which codegen resolves refs against).
    pub known: Option<PathBuf>,
    /// Ref hops followed from the targets (0: none).
    pub max_depth: usize,
    /// Documents one run may fetch.
    pub max_docs: usize,
    /// The largest record answer accepted.
    pub max_record_bytes: u64,
    /// The time one HTTP request may take.
    pub timeout: Duration,
    /// The time one DNS query may take.
    pub dns_timeout: Duration,
    /// `--locked`: a record whose CID is not the one already pinned in `into`'s manifest is
    /// an error (without it the new CID is pinned and the change is reported).
    pub locked: bool,
}

impl FetchOptions {
    /// Options with the defaults for `targets` into `into`.
    pub fn new(targets: Vec<Target>, into: PathBuf) -> FetchOptions {
        FetchOptions {
            targets,
            into,
            dns: None,
            plc: None,
            known: None,
            max_depth: DEFAULT_MAX_DEPTH,
            max_docs: DEFAULT_MAX_DOCS,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            timeout: atlex::net::fetch::DEFAULT_TIMEOUT,
            dns_timeout: atlex::identity::DEFAULT_DNS_TIMEOUT,
            locked: false,
        }
    }
}

/// One verified document, ready to write.
#[derive(Debug, Clone)]
struct Got {
    did: Did,
    /// Ref hops from a target (0 for a target).
    depth: usize,
    /// The NSIDs it refers to.
    refs: BTreeSet<String>,
    uri: String,
    cid: String,
    value: Value,
    /// The signed commit that proves the record.
    proven: Proven,
}

/// A lexicon authority, resolved: its DID, its PDS and its signing key.
#[derive(Debug, Clone)]
struct Resolved {
    did: Did,
    pds: Url,
    key: PublicKey,
}

/// An authority (or why there is none).
type Authority = Result<Resolved, String>;

struct Run<'a> {
    options: &'a FetchOptions,
    resolver: IdentityResolver,
    fetcher: Fetcher,
    authorities: HashMap<String, Authority>,
    got: BTreeMap<String, Got>,
    /// The CIDs pinned in `into`'s manifest before this run.
    pinned: BTreeMap<String, String>,
    problems: Vec<String>,
    out: &'a mut dyn Write,
}

/// Fetches, verifies, writes and pins (see the [crate docs](crate)); returns the NSIDs
/// written. Progress goes to `out`. Nothing is written unless everything verified.
pub async fn fetch(options: &FetchOptions, out: &mut dyn Write) -> Result<Vec<String>, Error> {
    if options.targets.is_empty() {
        return Err(Error::new("nothing to fetch: give NSIDs or patterns"));
    }
    // The fetcher's limit is the largest answer (a listRecords page); each request passes
    // its own, lower one (a record; the resolver's for DID documents).
    let fetcher = Fetcher::builder()
        .timeout(options.timeout)
        .max_body(page_limit(options.max_record_bytes))
        .build()
        .map_err(|error| Error::new(format!("building the HTTP client: {error}")))?;
    let mut builder = IdentityResolver::builder()
        .fetcher(fetcher.clone())
        .dns_timeout(options.dns_timeout);
    if let Some(dns) = options.dns {
        builder = builder.dns_server(dns);
    }
    if let Some(plc) = &options.plc {
        builder = builder.plc_url(plc.clone());
    }
    let resolver = builder
        .build()
        .map_err(|error| Error::new(format!("building the identity resolver: {error}")))?;
    let known = match &options.known {
        Some(dir) => known_nsids(dir)?,
        None => BTreeSet::new(),
    };
    let pinned = Manifest::load(&options.into)?
        .map(|manifest| {
            manifest
                .lexicons
                .into_iter()
                .map(|pin| (pin.nsid, pin.cid))
                .collect()
        })
        .unwrap_or_default();
    let mut run = Run {
        options,
        resolver,
        fetcher,
        authorities: HashMap::new(),
        got: BTreeMap::new(),
        pinned,
        problems: Vec::new(),
        out,
    };

    // Breadth first: (NSID, hops from a target).
    let mut queue: VecDeque<(Nsid, usize)> = VecDeque::new();
    let mut queued: BTreeSet<String> = BTreeSet::new();
    for target in &options.targets {
        match target {
            Target::Nsid(nsid) => {
                if queued.insert(nsid.to_string()) {
                    queue.push_back((nsid.clone(), 0));
                }
            }
            Target::Pattern { authority } => {
                for nsid in run.list(authority).await {
                    queued.insert(nsid);
                }
            }
        }
    }
    loop {
        // Refs of what was got so far (patterns included) that are not yet queued.
        for (nsid, depth) in run.pending_refs(&known, &queued) {
            queued.insert(nsid.to_string());
            queue.push_back((nsid, depth));
        }
        let Some((nsid, depth)) = queue.pop_front() else {
            break;
        };
        if depth > options.max_depth {
            run.problems.push(format!(
                "{nsid}: referred to {depth} hops away from the NSIDs asked for, more than \
                 --max-depth {}",
                options.max_depth
            ));
            continue;
        }
        if run.got.contains_key(nsid.as_str()) {
            continue;
        }
        if run.got.len() >= options.max_docs {
            run.problems.push(format!(
                "{nsid}: more than --max-docs {} documents to fetch; stopped",
                options.max_docs
            ));
            break;
        }
        run.get(&nsid, depth).await;
    }
    if !run.problems.is_empty() {
        return Err(Error {
            problems: run.problems,
        });
    }
    write(&options.into, &run.got, run.out)
}

impl Run<'_> {
    /// The authority of `authority` (an NSID's authority part), resolved once per run.
    async fn authority(&mut self, nsid: &Nsid) -> Authority {
        let key = nsid.authority().to_owned();
        if let Some(known) = self.authorities.get(&key) {
            return known.clone();
        }
        let resolved = self.resolve_authority(nsid).await;
        self.authorities.insert(key, resolved.clone());
        resolved
    }

    async fn resolve_authority(&self, nsid: &Nsid) -> Authority {
        let did = self
            .resolver
            .resolve_lexicon_authority(nsid)
            .await
            .map_err(|error| error.to_string())?;
        let document = self
            .resolver
            .resolve_did(&did)
            .await
            .map_err(|error| format!("{nsid}: resolving its authority {did}: {error}"))?;
        let pds = document
            .pds_endpoint()
            .map_err(|error| format!("{nsid}: the authority {did} has no usable PDS: {error}"))?;
        self.fetcher.check(&pds).map_err(|error| {
            format!("{nsid}: the PDS of the authority {did} is refused: {error}")
        })?;
        let key = document.signing_key().map_err(|error| {
            format!(
                "{nsid}: the authority {did} has no usable signing key (its records cannot be \
                 verified): {error}"
            )
        })?;
        Ok(Resolved { did, pds, key })
    }

    async fn get(&mut self, nsid: &Nsid, depth: usize) {
        let authority = match self.authority(nsid).await {
            Ok(found) => found,
            Err(error) => {
                // Name the NSID even when the message came from the shared authority lookup.
                let text = if error.contains(nsid.as_str()) {
                    error
                } else {
                    format!("{nsid}: {error}")
                };
                self.problems.push(text);
                return;
            }
        };
        let did = authority.did.clone();
        let url = match xrpc_url(
            &authority.pds,
            "com.atproto.repo.getRecord",
            &[
                ("repo", did.as_str()),
                ("collection", SCHEMA_COLLECTION),
                ("rkey", nsid.as_str()),
            ],
        ) {
            Ok(url) => url,
            Err(error) => {
                self.problems.push(format!("{nsid}: {error}"));
                return;
            }
        };
        let body = match self.get_json(&url).await {
            Ok(body) => body,
            Err(error) => {
                self.problems.push(format!("{nsid}: {error}"));
                return;
            }
        };
        let shown = atlex::net::redact_url(&url);
        let _ = writeln!(
            self.out,
            "  fetched {nsid} from {did} ({shown}){}",
            if depth > 0 { " (referred to)" } else { "" }
        );
        self.accept(nsid, &authority, &body, &shown, depth).await;
    }

    /// Lists the records of `authority`'s repository whose NSID is `authority.<name>`; each is
    /// checked and kept. Returns the NSIDs found.
    async fn list(&mut self, authority: &str) -> Vec<String> {
        let pattern = format!("{authority}.*");
        let probe = match Nsid::new(format!("{authority}.x")) {
            Ok(probe) => probe,
            Err(error) => {
                self.problems.push(format!("{pattern}: {error}"));
                return Vec::new();
            }
        };
        let resolved = match self.authority(&probe).await {
            Ok(found) => found,
            Err(error) => {
                // The lookup was made for a stand-in NSID of the authority; name the pattern.
                self.problems.push(error.replace(probe.as_str(), &pattern));
                return Vec::new();
            }
        };
        let (did, pds) = (resolved.did.clone(), resolved.pds.clone());
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        let pages = self.options.max_docs / PAGE + 1;
        for _ in 0..pages {
            let limit = PAGE.to_string();
            let mut query = vec![
                ("repo", did.as_str()),
                ("collection", SCHEMA_COLLECTION),
                ("limit", limit.as_str()),
            ];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.as_str()));
            }
            let url = match xrpc_url(&pds, "com.atproto.repo.listRecords", &query) {
                Ok(url) => url,
                Err(error) => {
                    self.problems.push(format!("{pattern}: {error}"));
                    return found;
                }
            };
            let shown = atlex::net::redact_url(&url);
            let limit = page_limit(self.options.max_record_bytes);
            let body = match self.get_json_limited(&url, limit).await {
                Ok(body) => body,
                Err(error) => {
                    self.problems.push(format!("{pattern}: {error}"));
                    return found;
                }
            };
            let Some(records) = body.get("records").and_then(Value::as_array) else {
                self.problems.push(format!(
                    "{pattern}: {shown}: `records` is missing or not an array"
                ));
                return found;
            };
            for (index, entry) in records.iter().enumerate() {
                let rkey = entry
                    .get("uri")
                    .and_then(Value::as_str)
                    .and_then(|uri| uri.rsplit_once('/'))
                    .map(|(_, rkey)| rkey.to_owned());
                let Some(rkey) = rkey else {
                    self.problems.push(format!(
                        "{pattern}: {shown}: `records[{index}].uri` is missing"
                    ));
                    continue;
                };
                let Ok(nsid) = Nsid::new(rkey.as_str()) else {
                    // Not an NSID record key: not a lexicon record of any authority.
                    continue;
                };
                if nsid.authority() != authority {
                    continue;
                }
                if found.len() + self.got.len() >= self.options.max_docs {
                    self.problems.push(format!(
                        "{pattern}: more than --max-docs {} documents; stopped",
                        self.options.max_docs
                    ));
                    return found;
                }
                let _ = writeln!(self.out, "  listed {nsid} from {did} ({shown})");
                let origin = format!("{shown} records[{index}]");
                self.accept(&nsid, &resolved, entry, &origin, 0).await;
                found.push(nsid.to_string());
            }
            cursor = body
                .get("cursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() || records.is_empty() {
                break;
            }
        }
        if found.is_empty() {
            self.problems.push(format!(
                "{pattern}: the repository of {did} has no {SCHEMA_COLLECTION} record under {authority}"
            ));
        }
        found
    }

    /// Checks one `{uri, cid, value}` answer, proves it with the repository's signed commit
    /// (`com.atproto.sync.getRecord`, see [`proof`]) and keeps it.
    async fn accept(
        &mut self,
        nsid: &Nsid,
        authority: &Resolved,
        body: &Value,
        origin: &str,
        depth: usize,
    ) {
        let did = &authority.did;
        let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
        let (uri, cid) = (field("uri"), field("cid"));
        if cid.is_empty() {
            self.problems.push(format!(
                "{nsid}: {origin}: `cid` is missing (it is pinned, so it is required)"
            ));
            return;
        }
        let Some(value) = body.get("value") else {
            self.problems
                .push(format!("{nsid}: {origin}: `value` is missing"));
            return;
        };
        match record::check(nsid, did, uri, cid, value, origin) {
            Ok(checked) => {
                let proven = match self.prove(nsid, authority, cid).await {
                    Ok(proven) => proven,
                    Err(problem) => {
                        self.problems.push(problem);
                        return;
                    }
                };
                match self.pinned.get(nsid.as_str()) {
                    Some(pinned) if pinned != cid && self.options.locked => {
                        self.problems.push(format!(
                            "{nsid}: {origin}: the record's CID is {cid}, {MANIFEST} pins {pinned} \
                             (--locked: the published lexicon changed)"
                        ));
                        return;
                    }
                    Some(pinned) if pinned != cid => {
                        let _ = writeln!(
                            self.out,
                            "  {nsid} changed since it was pinned: {pinned} -> {cid}"
                        );
                    }
                    _ => {}
                }
                for warning in checked.warnings {
                    let _ = writeln!(self.out, "  warning: {warning}");
                }
                self.got.insert(
                    nsid.to_string(),
                    Got {
                        did: did.clone(),
                        depth,
                        refs: checked.refs,
                        uri: uri.to_owned(),
                        cid: cid.to_owned(),
                        value: value.clone(),
                        proven,
                    },
                );
            }
            Err(problems) => self.problems.extend(problems),
        }
    }

    /// The refs of the documents got so far that are neither known nor queued, each with its
    /// depth (one more than its shallowest referrer's).
    fn pending_refs(
        &self,
        known: &BTreeSet<String>,
        queued: &BTreeSet<String>,
    ) -> Vec<(Nsid, usize)> {
        let mut pending: BTreeMap<String, usize> = BTreeMap::new();
        for got in self.got.values() {
            for other in &got.refs {
                if known.contains(other) || queued.contains(other) || self.got.contains_key(other) {
                    continue;
                }
                let depth = got.depth.saturating_add(1);
                let entry = pending.entry(other.clone()).or_insert(depth);
                *entry = (*entry).min(depth);
            }
        }
        pending
            .into_iter()
            .filter_map(|(nsid, depth)| Nsid::new(nsid).ok().map(|nsid| (nsid, depth)))
            .collect()
    }

    /// Fetches the proof of `nsid`'s record from the authority's PDS and verifies it against
    /// the authority's signing key and the record CID `cid`.
    async fn prove(
        &mut self,
        nsid: &Nsid,
        authority: &Resolved,
        cid: &str,
    ) -> Result<Proven, String> {
        let url = xrpc_url(
            &authority.pds,
            "com.atproto.sync.getRecord",
            &[
                ("did", authority.did.as_str()),
                ("collection", SCHEMA_COLLECTION),
                ("rkey", nsid.as_str()),
            ],
        )
        .map_err(|error| format!("{nsid}: {error}"))?;
        let shown = atlex::net::redact_url(&url);
        let limit = u64::try_from(proof::proof_limits(self.options.max_record_bytes).max_size)
            .unwrap_or(u64::MAX);
        let fetched = self
            .fetcher
            .get(
                &url,
                Get {
                    accept: Some("application/vnd.ipld.car"),
                    max_body: Some(limit),
                    host: None,
                    trusted_url: false,
                },
            )
            .await
            .map_err(|error| format!("{nsid}: fetching the record's proof: {error}"))?;
        let proven = proof::verify_proof(
            fetched.body,
            &authority.did,
            &authority.key,
            nsid,
            cid,
            self.options.max_record_bytes,
        )
        .map_err(|error| format!("{nsid}: {shown}: {error}"))?;
        let _ = writeln!(
            self.out,
            "  proved {nsid}: commit {} (rev {}) signed by {}",
            proven.commit, proven.rev, authority.did
        );
        Ok(proven)
    }

    async fn get_json(&self, url: &Url) -> Result<Value, String> {
        self.get_json_limited(url, self.options.max_record_bytes)
            .await
    }

    async fn get_json_limited(&self, url: &Url, limit: u64) -> Result<Value, String> {
        let fetched = self
            .fetcher
            .get(
                url,
                Get {
                    accept: Some("application/json"),
                    max_body: Some(limit),
                    host: None,
                    trusted_url: false,
                },
            )
            .await
            .map_err(|error| error.to_string())?;
        serde_json::from_slice(&fetched.body).map_err(|error| {
            format!(
                "{}: the answer is not JSON ({error})",
                atlex::net::redact_url(url)
            )
        })
    }
}

/// The limit of a `listRecords` page: up to [`PAGE`] records.
fn page_limit(max_record_bytes: u64) -> u64 {
    max_record_bytes.saturating_mul(u64::try_from(PAGE).unwrap_or(u64::MAX))
}

/// `<pds>/xrpc/<method>?<query>`.
fn xrpc_url(pds: &Url, method: &str, query: &[(&str, &str)]) -> Result<Url, String> {
    let mut url = pds
        .join(&format!("/xrpc/{method}"))
        .map_err(|error| format!("{pds}: cannot make the {method} URL: {error}"))?;
    url.query_pairs_mut().extend_pairs(query);
    Ok(url)
}

/// The NSIDs (`id`s) of the lexicons in `dir`.
fn known_nsids(dir: &Path) -> Result<BTreeSet<String>, Error> {
    let files = atlex_lexicon::json_files(dir)
        .map_err(|error| Error::new(format!("listing the known lexicons: {error}")))?;
    let mut known = BTreeSet::new();
    for file in files {
        let text = std::fs::read(&file)
            .map_err(|error| Error::new(format!("reading {}: {error}", file.display())))?;
        if let Ok(value) = serde_json::from_slice::<Value>(&text)
            && let Some(id) = value.get("id").and_then(Value::as_str)
        {
            known.insert(id.to_owned());
        }
    }
    Ok(known)
}

/// Writes the documents and the manifest (merged with the previous one).
fn write(
    dir: &Path,
    got: &BTreeMap<String, Got>,
    out: &mut dyn Write,
) -> Result<Vec<String>, Error> {
    let mut manifest = Manifest::load(dir)?.unwrap_or_default();
    let mut written = Vec::new();
    for (nsid, got) in got {
        let parsed =
            Nsid::new(nsid.as_str()).map_err(|error| Error::new(format!("{nsid}: {error}")))?;
        let file = document_path(&parsed);
        let path = dir.join(&file);
        let mut text = serde_json::to_string_pretty(&got.value)
            .map_err(|error| Error::new(format!("{nsid}: encoding the document: {error}")))?;
        text.push('\n');
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| Error::new(format!("creating {}: {error}", parent.display())))?;
        }
        std::fs::write(&path, text.as_bytes())
            .map_err(|error| Error::new(format!("writing {}: {error}", path.display())))?;
        manifest.upsert(Pin {
            nsid: nsid.clone(),
            did: got.did.to_string(),
            uri: got.uri.clone(),
            cid: got.cid.clone(),
            file,
            sha256: sha256_hex(text.as_bytes()),
            rev: Some(got.proven.rev.clone()),
        });
        written.push(nsid.clone());
    }
    let text = manifest.to_text()?;
    let path = dir.join(MANIFEST);
    std::fs::write(&path, text)
        .map_err(|error| Error::new(format!("writing {}: {error}", path.display())))?;
    let _ = writeln!(
        out,
        "wrote {} lexicon(s) to {} and pinned them in {MANIFEST}",
        written.len(),
        dir.display()
    );
    Ok(written)
}
