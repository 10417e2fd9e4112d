//! downhill-data (under construction).
