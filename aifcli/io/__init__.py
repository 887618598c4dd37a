"""Image I/O at the edges of the pipeline: read, write, EXIF, atomic files."""
from .atomic import check_output, write_bytes_atomic
from .exif import camera_summary, capture_time, get_float, get_tag, orientation, read_exif_tags
from .formats import READ_EXT, WRITE_EXT, is_image_file, kind_of
from .read import apply_orientation, image_size, raw_white_balance, read_image, read_metadata
from .write import encode_image, read_gray, write_gray8, write_gray16, write_image

__all__ = [
    "READ_EXT", "WRITE_EXT", "apply_orientation", "camera_summary", "capture_time", "check_output",
    "encode_image", "get_float", "get_tag", "image_size", "is_image_file", "kind_of", "orientation",
    "raw_white_balance", "read_exif_tags", "read_gray", "read_image", "read_metadata", "write_bytes_atomic",
    "write_gray8", "write_gray16", "write_image",
]
