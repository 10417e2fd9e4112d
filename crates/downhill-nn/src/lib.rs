//! downhill-nn (under construction).
