//! tenure's fault campaign.
