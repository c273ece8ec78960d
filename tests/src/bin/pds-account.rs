//! Creates an account on the reference PDS named by `ATLEX_PDS_URL` (and `ATLEX_PLC_URL`, as
//! `cargo xtask test` exports them) and prints `ATLEX_HANDLE=<handle>` and
//! `ATLEX_PASSWORD=<password>` on stdout, for the `examples` step of `cargo xtask test`, which
//! runs the SDK's examples with them. The account is made the way the end-to-end tests make
//! theirs ([`Pds::create_account`]).
//!
//! ```sh
//! cargo run -q -p atlex-tests --bin pds-account
//! ```

use std::process::ExitCode;

use atlex_tests::pds::Pds;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let pds = match Pds::try_shared() {
        Ok(pds) => pds,
        Err(error) => {
            eprintln!("pds-account: no reference PDS: {error}");
            return ExitCode::FAILURE;
        }
    };
    match pds.create_account().await {
        Ok(account) => {
            eprintln!("pds-account: created {} ({})", account.handle, account.did);
            println!("ATLEX_HANDLE={}", account.handle);
            println!("ATLEX_PASSWORD={}", account.password);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "pds-account: createAccount on {} failed: {error}",
                pds.url()
            );
            ExitCode::FAILURE
        }
    }
}
