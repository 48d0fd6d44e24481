//! End-to-end tests of the product against real Postgres, Redis and cloudsim; see `tests/it`.
