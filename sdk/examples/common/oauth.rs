//! What the OAuth examples share: the identity resolver and `allow_http` for a development PDS.

use atlex::identity::{HandleMethod, IdentityResolver};

/// For a development PDS (`$ATLEX_PDS_URL`, with `$ATLEX_PLC_URL`, as `cargo xtask test`
/// exports them for the reference PDS): a resolver that asks that PDS for handles and that PLC
/// directory for DIDs over plain `http` on localhost, and `true` (the OAuth client must then
/// allow `http` too). Otherwise the default resolver (DNS and `https` well-known for handles,
/// plc.directory) and `false`.
pub fn resolver() -> Result<(IdentityResolver, bool), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    match env("ATLEX_PDS_URL") {
        Some(pds) => {
            let mut builder = IdentityResolver::builder()
                .handle_methods([HandleMethod::Xrpc(url::Url::parse(&pds)?)])
                .allow_http(true)
                .block_private_addresses(false);
            if let Some(plc) = env("ATLEX_PLC_URL") {
                builder = builder.plc_url(plc);
            }
            Ok((builder.build()?, true))
        }
        None => Ok((IdentityResolver::new()?, false)),
    }
}
