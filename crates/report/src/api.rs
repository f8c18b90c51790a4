//! The real rates APIs `rates fetch --api` and `rates compare --api` can
//! use, named, and how politely they are asked.

use rates_server::Shape;

/// A real rates API, named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// vatcomply.com: `/rates?base=USD&symbols=...`.
    Vatcomply,
    /// frankfurter.dev (v1): `/v1/latest?base=USD&symbols=...`.
    Frankfurter,
}

impl Api {
    /// The service's origin.
    pub fn origin(self) -> &'static str {
        match self {
            Self::Vatcomply => "https://api.vatcomply.com",
            Self::Frankfurter => "https://api.frankfurter.dev",
        }
    }

    /// Its response shape (which also gives its path).
    pub fn shape(self) -> Shape {
        match self {
            Self::Vatcomply => Shape::Vatcomply,
            Self::Frankfurter => Shape::Frankfurter,
        }
    }

    /// The endpoint template: the service's own, or `endpoint` (a whole
    /// template, or an origin to which the API's path is added).
    pub fn endpoint(self, endpoint: Option<&str>) -> String {
        let path = self.shape().path_template();
        match endpoint {
            Some(e) if e.contains("{base}") => e.to_owned(),
            Some(origin) => format!("{}{path}", origin.trim_end_matches('/')),
            None => format!("{}{path}", self.origin()),
        }
    }
}

/// Concurrency with a real API: a free public service is asked for no more
/// than this unless the user says otherwise.
pub const API_CONCURRENCY: usize = 2;
/// Requests per second with a real API, likewise.
pub const API_RATE_PER_SECOND: f64 = 5.0;

impl std::str::FromStr for Api {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "vatcomply" => Ok(Self::Vatcomply),
            "frankfurter" => Ok(Self::Frankfurter),
            _ => Err(format!(
                "`{s}` is not a rates API: choose vatcomply or frankfurter"
            )),
        }
    }
}
