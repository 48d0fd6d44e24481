//! The error of a call to Azure, with the code Azure gave so scans can record it.

use azure_core::error::ErrorKind;

/// A failed call to Azure.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error(
        "no Azure credential is configured: set AZURE_TENANT_ID, AZURE_CLIENT_ID and \
         AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE, or AZURE_USE_MANAGED_IDENTITY"
    )]
    NoCredential,
    #[error("the Azure configuration is unusable: {0}")]
    Config(String),
    #[error("could not get an Azure token: {0}")]
    Credential(String),
    #[error("{surface} answered HTTP {status} ({code}): {message}")]
    Http { surface: &'static str, status: u16, code: String, message: String },
    #[error("{surface} could not be reached: {message}")]
    Transport { surface: &'static str, message: String },
    #[error("the work did not finish within {seconds} s (discoveryScanTimeout)")]
    Timeout { seconds: u64 },
    #[error("{surface} sent a response that could not be read: {message}")]
    Decode { surface: &'static str, message: String },
}

impl AzureError {
    /// A short machine code for the scan record: Azure's own code where it gave one.
    pub fn code(&self) -> String {
        match self {
            AzureError::NoCredential => "no_credential".to_owned(),
            AzureError::Config(_) => "bad_configuration".to_owned(),
            AzureError::Credential(_) => "credential_failed".to_owned(),
            AzureError::Http { code, .. } => code.clone(),
            AzureError::Transport { .. } => "unreachable".to_owned(),
            AzureError::Timeout { .. } => "timeout".to_owned(),
            AzureError::Decode { .. } => "bad_response".to_owned(),
        }
    }

    /// Whether trying again cannot help (403, 404, bad configuration).
    pub fn is_permanent(&self) -> bool {
        match self {
            AzureError::NoCredential | AzureError::Config(_) | AzureError::Credential(_) => true,
            AzureError::Http { status, .. } => matches!(status, 400..=404),
            AzureError::Transport { .. } | AzureError::Decode { .. } => false,
            AzureError::Timeout { .. } => false,
        }
    }

    /// Converts an SDK error, digging the most specific code out of the Key Vault error body
    /// (`innererror.code` such as `ForbiddenByFirewall` when there is one).
    pub fn from_sdk(surface: &'static str, err: azure_core::Error) -> Self {
        match err.kind() {
            ErrorKind::HttpResponse { status, error_code, raw_response } => {
                let body = raw_response.as_ref().map(|r| r.body().as_ref().to_vec());
                let (code, message) = body
                    .as_deref()
                    .and_then(parse_error_body)
                    .unwrap_or_else(|| (error_code.clone().unwrap_or_default(), err.to_string()));
                let code =
                    if code.is_empty() { format!("http_{}", u16::from(*status)) } else { code };
                AzureError::Http { surface, status: u16::from(*status), code, message }
            }
            ErrorKind::Credential => AzureError::Credential(err.to_string()),
            ErrorKind::Io | ErrorKind::Connection => {
                AzureError::Transport { surface, message: err.to_string() }
            }
            ErrorKind::DataConversion => AzureError::Decode { surface, message: err.to_string() },
            ErrorKind::Other => AzureError::Transport { surface, message: err.to_string() },
        }
    }
}

/// Reads `{"error": {"code", "message", "innererror": {"code"}}}`, the shape shared by Key
/// Vault and Resource Manager.
pub(crate) fn parse_error_body(body: &[u8]) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    let message = error.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_owned();
    let inner = error.get("innererror").and_then(|i| i.get("code")).and_then(|c| c.as_str());
    let code = inner.or_else(|| error.get("code").and_then(|c| c.as_str()))?;
    Some((code.to_owned(), message))
}
