//! Machine configuration (v1alpha1 and the other 1.7 document kinds).
pub mod docs;
pub mod patch;
