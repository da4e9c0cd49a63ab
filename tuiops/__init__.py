"""tuiops: curate object-detection training sets at scale, from the terminal."""

__version__ = "0.1.0"

import warnings as _warnings

# asyncssh still names DSA keys, which the cryptography package deprecates at import time: ten
# lines of warning before every SSH command's output. tuiops never uses DSA keys.
_warnings.filterwarnings("ignore", message=r"DSA is deprecated", module=r"asyncssh(\.|$)")
