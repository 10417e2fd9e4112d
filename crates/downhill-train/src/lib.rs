//! downhill-train (under construction).
