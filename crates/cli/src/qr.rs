//! A contact card as a QR code: drawn in the terminal (`card --qr`), written as a PNG
//! (`card --qr-png FILE`), and read back from a picture (`contact add --qr-image FILE`).
//!
//! The code holds the card's text exactly as `deaddrop card` prints it, at the strongest error
//! correction that still fits (an `xwing` card of about 1,680 characters takes version 34, 153
//! modules a side, 161 columns with the quiet zone; an `rsa-oaep` card far less). In the
//! terminal each character cell shows two modules with a half block in explicit colours, black
//! on white whatever the terminal's theme (a light-on-dark code is unreadable to many scanners),
//! with the quiet zone of four modules the standard asks for. `NO_COLOR` does not apply: the
//! colours are the code, not decoration.

use std::io::Read;
use std::path::Path;

use deaddrop_client::ClientError;
use qrcode::{Color, EcLevel, QrCode};

/// The quiet zone around the code, in modules.
const QUIET: usize = 4;
/// Pixels per module in a PNG: large enough for a phone camera off a screen or paper.
const PNG_SCALE: usize = 8;
/// The largest picture `contact add --qr-image` reads, in bytes: refused before decoding.
pub const MAX_IMAGE_BYTES: u64 = 16 << 20;
/// The largest picture side `contact add --qr-image` decodes, in pixels.
const MAX_IMAGE_SIDE: u32 = 8192;

/// The QR code of `text` at the strongest error correction it fits in.
pub fn encode(text: &str) -> Result<QrCode, ClientError> {
    for level in [EcLevel::H, EcLevel::Q, EcLevel::M, EcLevel::L] {
        if let Ok(code) = QrCode::with_error_correction_level(text.as_bytes(), level) {
            return Ok(code);
        }
    }
    Err(ClientError::Input(format!(
        "the card ({} characters) does not fit in a QR code (at most 2,953 bytes)",
        text.len()
    )))
}

/// Whether the module at (`x`, `y`) of the code with its quiet zone is dark.
fn dark(modules: &[Color], width: usize, x: usize, y: usize) -> bool {
    let inside = |v: usize| v.checked_sub(QUIET).filter(|&v| v < width);
    match (inside(x), inside(y)) {
        (Some(x), Some(y)) => modules.get(y * width + x) == Some(&Color::Dark),
        _ => false,
    }
}

/// The columns the drawing of `code` takes (one per module, quiet zone included).
pub fn columns(code: &QrCode) -> usize {
    code.width() + 2 * QUIET
}

/// `code` for a terminal: two modules per character cell (`▀` with the upper one as foreground
/// and the lower one as background), black (256-colour 16) on white (231), every line reset.
pub fn draw(code: &QrCode) -> String {
    let (modules, width) = (code.to_colors(), code.width());
    let side = width + 2 * QUIET;
    let colour = |d: bool| if d { 16 } else { 231 };
    let mut out = String::new();
    for row in (0..side).step_by(2) {
        for x in 0..side {
            let top = dark(&modules, width, x, row);
            let bottom = row + 1 < side && dark(&modules, width, x, row + 1);
            out.push_str(&format!(
                "\x1b[38;5;{};48;5;{}m\u{2580}",
                colour(top),
                colour(bottom)
            ));
        }
        out.push_str("\x1b[0m\n");
    }
    out
}

/// Writes `code` as a black-on-white PNG to `path` (atomically: complete or not at all).
/// Returns the image's side in pixels.
pub fn write_png(code: &QrCode, path: &Path) -> Result<u32, ClientError> {
    let (modules, width) = (code.to_colors(), code.width());
    let side = (width + 2 * QUIET) * PNG_SCALE;
    let side32 = u32::try_from(side)
        .map_err(|_| ClientError::Input("the QR code is too large for a picture".into()))?;
    let img = image::GrayImage::from_fn(side32, side32, |x, y| {
        let (x, y) = (x as usize / PNG_SCALE, y as usize / PNG_SCALE);
        image::Luma([if dark(&modules, width, x, y) { 0 } else { 255 }])
    });
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let what = format!("writing {}", path.display());
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| ClientError::io(&what, e))?;
    img.write_to(tmp.as_file_mut(), image::ImageFormat::Png)
        .map_err(|e| ClientError::io(&what, std::io::Error::other(e)))?;
    tmp.persist(path)
        .map_err(|e| ClientError::io(&what, e.error))?;
    Ok(side32)
}

/// The text of the QR code in the picture (PNG or JPEG) at `path`. Refuses a file over
/// [`MAX_IMAGE_BYTES`] before decoding it, and a picture wider or taller than 8,192 pixels
/// while decoding.
pub fn read_image(path: &Path) -> Result<String, ClientError> {
    let shown = path.display();
    let file = std::fs::File::open(path)
        .map_err(|e| ClientError::io(format!("cannot open {shown}"), e))?;
    let len = file
        .metadata()
        .map_err(|e| ClientError::io(format!("cannot read {shown}"), e))?
        .len();
    if len > MAX_IMAGE_BYTES {
        return Err(ClientError::Input(format!(
            "{shown} is {len} bytes; a picture of a card's QR code takes far less, and deaddrop \
             reads at most {MAX_IMAGE_BYTES}: crop it to the code or save it smaller"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_IMAGE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ClientError::io(format!("cannot read {shown}"), e))?;
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        return Err(ClientError::Input(format!(
            "{shown} grew past {MAX_IMAGE_BYTES} bytes while it was read"
        )));
    }
    let unreadable = |detail: String| ClientError::Card(format!("{shown}: {detail}"));
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| {
            unreadable(format!(
                "not a picture deaddrop can read (PNG or JPEG): {e}"
            ))
        })?
        .into_luma8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    // The decoder is someone else's code fed someone else's picture: a panic in it is a
    // picture that cannot be read, not the end of the command.
    let found = std::panic::catch_unwind(|| {
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| img.as_raw()[y * w + x]);
        prepared
            .detect_grids()
            .iter()
            .find_map(|g| g.decode().ok().map(|(_, text)| text))
    })
    .map_err(|_| unreadable("the QR decoder failed on this picture".into()))?;
    found.ok_or_else(|| {
        unreadable("no readable QR code in it: photograph the code straight on, whole, with its white border".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawing_has_the_quiet_zone_and_explicit_colours() {
        let code = encode("deaddrop-card-v1:short").unwrap();
        let art = draw(&code);
        let lines: Vec<&str> = art.lines().collect();
        assert_eq!(lines.len(), columns(&code).div_ceil(2));
        // The first line is all quiet zone: white over white.
        assert!(!lines[0].contains("38;5;16"), "{}", lines[0]);
        assert!(lines.iter().all(|l| l.ends_with("\x1b[0m")));
        assert_eq!(lines[0].matches('\u{2580}').count(), columns(&code));
    }
}
