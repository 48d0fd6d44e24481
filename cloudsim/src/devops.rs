//! Azure DevOps REST on the main port.

/// The resource (application id) of Azure DevOps, the audience of its Entra tokens.
pub const DEVOPS_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";
