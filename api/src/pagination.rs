//! `limit` and `offset` for every list, and the `{"items", "total", "limit", "offset"}` body.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size a caller may ask for.
pub const MAX_LIMIT: i64 = 500;

/// The paging query parameters, checked by [`Paging::validate`].
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page size: 1 to 500, 50 when absent.
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// Items to skip: 0 or more, 0 when absent.
    #[param(minimum = 0, example = 0)]
    pub offset: Option<i64>,
}

impl Paging {
    /// Returns `(limit, offset)` or a 400 naming the bad parameter.
    pub fn validate(self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let offset = self.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::invalid("offset", "must not be negative"));
        }
        Ok((limit, offset))
    }
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// This page of the list.
    pub items: Vec<T>,
    /// Items matching the filters, on every page.
    pub total: i64,
    /// The page size in force.
    pub limit: i64,
    /// The items skipped before this page.
    pub offset: i64,
}
