//! Upload an image and post it: a small PNG drawn in memory (or `--file PATH`), uploaded with
//! `com.atproto.repo.uploadBlob`, then referenced from a post's image embed.
//!
//! ```sh
//! cargo run -p atlex --example upload_image -- --handle alice.bsky.social \
//!     --password APP-PASSWORD [--file picture.jpg] [--alt "what the image shows"]
//! ```
//!
//! `--pds`, `--handle` and `--password` can also come from `ATLEX_PDS_URL`, `ATLEX_HANDLE` and
//! `ATLEX_PASSWORD`.

mod common;

use std::process::ExitCode;

use atlex::app::bsky::embed::images::{Image, Images};
use atlex::app::bsky::feed::post::{Post, PostEmbed};
use atlex::types::Datetime;
use atlex::xrpc::RawBody;

const USAGE: &str = "usage: upload_image [--pds URL] [--handle HANDLE] \
                     [--password APP-PASSWORD] [--file PATH] [--alt TEXT]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match common::args(USAGE) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("upload_image: {error}");
            ExitCode::FAILURE
        }
    }
}

fn flag<'a>(rest: &'a [String], name: &str) -> Option<&'a str> {
    let at = rest.iter().position(|arg| arg == name)?;
    rest.get(at + 1).map(String::as_str)
}

async fn run(args: common::Args) -> Result<(), Box<dyn std::error::Error>> {
    let body = match flag(&args.rest, "--file") {
        // Streamed from the file, not read into memory first.
        Some(path) => RawBody::from_file(path, mime_type(path)?),
        None => RawBody::new(png(48, 32), "image/png"),
    };
    let alt = flag(&args.rest, "--alt").unwrap_or("A colour gradient drawn by the atlex example");
    let client = common::login(&args).await?;

    let (blob, client) = client.upload_blob(body).await?;
    println!(
        "uploaded {} bytes of {} as blob {}",
        blob.size().unwrap_or(0),
        blob.mime_type(),
        blob.cid().map(|cid| cid.to_string()).unwrap_or_default()
    );

    let images = Images::new(vec![Image::new(blob, alt)]);
    let post = Post::new("An image uploaded with atlex", Datetime::now())
        .embed(PostEmbed::Images(Box::new(images)));
    let (created, _client) = client.create_record(&post).await?;
    println!("posted {}", created.uri);
    Ok(())
}

fn mime_type(path: &str) -> Result<&'static str, String> {
    let extension = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match extension.as_str() {
        "png" => Ok("image/png"),
        "jpg" | "jpeg" => Ok("image/jpeg"),
        "gif" => Ok("image/gif"),
        "webp" => Ok("image/webp"),
        _ => Err(format!(
            "{path}: not a .png, .jpg, .gif or .webp file (the type the blob is uploaded as)"
        )),
    }
}

/// A `width` × `height` RGB PNG of a colour gradient (at most 255 × 255): the chunks by hand,
/// the pixels in one uncompressed ("stored") deflate block.
fn png(width: u8, height: u8) -> Vec<u8> {
    let mut pixels = Vec::new();
    for y in 0..height {
        pixels.push(0); // filter: none
        for x in 0..width {
            let red = u8::try_from(u32::from(x) * 255 / u32::from(width.max(1))).unwrap_or(255);
            let green = u8::try_from(u32::from(y) * 255 / u32::from(height.max(1))).unwrap_or(255);
            pixels.extend_from_slice(&[red, green, 160]);
        }
    }
    // zlib: header, one final stored block (at most 255 * 766 bytes < 65 536), Adler-32.
    let len = u16::try_from(pixels.len()).unwrap_or(u16::MAX);
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&pixels[..usize::from(len)]);
    zlib.extend_from_slice(&adler32(&pixels[..usize::from(len)]).to_be_bytes());

    let mut header = Vec::new();
    header.extend_from_slice(&u32::from(width).to_be_bytes());
    header.extend_from_slice(&u32::from(height).to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", header), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(&data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    png
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
