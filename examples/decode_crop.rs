//! Writes the centre `SIZE`x`SIZE` crop of an image, as decoded by the `image` crate, to stdout
//! as raw interleaved RGB bytes. `scripts/onnxruntime_reference.py` uses it so that onnxruntime
//! sees exactly the pixels the Rust tests see (JPEG decoders differ by a grey level here and
//! there).
//!
//! `cargo run -q --example decode_crop -- IMAGE SIZE > crop.rgb`

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, size] = args.as_slice() else {
        return Err("usage: decode_crop IMAGE SIZE".into());
    };
    let size: u32 = size.parse()?;
    let img = image::open(path)?.to_rgb8();
    if img.width() < size || img.height() < size {
        return Err(format!("{path} is smaller than {size}x{size}").into());
    }
    let (left, top) = ((img.width() - size) / 2, (img.height() - size) / 2);
    let crop = image::imageops::crop_imm(&img, left, top, size, size).to_image();
    std::io::stdout().write_all(crop.as_raw())?;
    Ok(())
}
