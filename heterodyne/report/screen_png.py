"""Screen-resolution copies of figure PNGs, for embedding in the HTML pages.

A figure PNG (saved at 200 dpi by :func:`heterodyne.plots.style.save_figure`) is shrunk by
s = min(SCREEN_DPI / dpi, MAX_SIDE / largest side, 1): at SCREEN_DPI = 96, one CSS pixel
(1/96 in), the page shows it at its physical size pixel for pixel. Resampling averages the source
pixels each new pixel covers (box filter: mean colour kept, no ringing), on white where the image
is transparent. Line plots are stored with a 256-colour median-cut palette (mean change < 1/255
of a channel on the demo's figures, a third of the RGB size); heat maps (``full_colour``) stay
24-bit RGB so that no map value changes colour. The full-resolution PNG and the vector PDF stay in
the figures folder.
"""

import io

from PIL import Image

#: resolution of the embedded copy, dots per inch (one CSS pixel per dot)
SCREEN_DPI = 96
#: largest width or height of the embedded copy, pixels
MAX_SIDE = 1600


def screen_scale(size, dpi):
    """Shrink factor s <= 1 of an image of ``size`` (width, height) px saved at ``dpi`` (x, y dots
    per inch; None when the file records none, then only MAX_SIDE applies)."""
    bounds = [1.0, MAX_SIDE / max(size)]
    if dpi:
        bounds.append(SCREEN_DPI / float(dpi[0]))
    return min(bounds)


def _opaque_rgb(image):
    """``image`` as RGB, any transparency composited onto white."""
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def screen_png(png_bytes, full_colour=False):
    """PNG bytes of the screen-resolution copy of the PNG ``png_bytes``: 256-colour palette, or
    24-bit RGB when ``full_colour`` (heat maps)."""
    with Image.open(io.BytesIO(png_bytes)) as source:
        scale = screen_scale(source.size, source.info.get("dpi"))
        image = _opaque_rgb(source)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.BOX)
    if not full_colour:
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
