//! Values recorded as attributes of a run (its parameters, its task's description).

/// A recorded attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// A string.
    Text(String),
    /// A floating-point number.
    Float(f64),
    /// An integer.
    Int(i64),
}

impl std::fmt::Display for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attr::Text(s) => write!(f, "{s}"),
            Attr::Float(v) => write!(f, "{v}"),
            Attr::Int(v) => write!(f, "{v}"),
        }
    }
}
