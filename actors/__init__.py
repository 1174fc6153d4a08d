"""A generic OTP-style actor runtime on Trio. Never imports flow8."""
