//! downhill-plot (under construction).
