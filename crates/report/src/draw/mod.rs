//! Everything written from measured records: tables, exports, charts, and
//! the results folder. Nothing here measures.

pub(crate) mod canvas;
pub(crate) mod chart;
pub(crate) mod export;
pub(crate) mod fmt;
pub(crate) mod html;
pub(crate) mod machine;
pub(crate) mod out;
pub(crate) mod plot;
pub(crate) mod table;
pub(crate) mod trackers;

pub(crate) use table::textwrap as wrap;
