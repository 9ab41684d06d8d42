package azure

import (
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Credential selects an Azure credential that is not a key or token.
type Credential string

// Credential kinds, as barman-cloud's --azure-credential names them.
const (
	CredentialNone     Credential = ""
	CredentialAzureCLI Credential = "azure-cli"
	// CredentialManagedIdentity is also what the plugin's inheritFromAzureAD
	// selects: workload identity when its environment is present (AKS),
	// then the managed identity of the host.
	CredentialManagedIdentity Credential = "managed-identity"
	CredentialDefault         Credential = "default"
)

// Config configures the Azure Blob driver.
type Config struct {
	// AccountURL is https://<account>.blob.core.windows.net or, for an
	// emulator, http(s)://host:port/<account>. It is ignored when a
	// ConnectionString is given, as barman-cloud ignores the URL host.
	AccountURL string
	Account    string
	Container  string
	// Exactly one way to authenticate: ConnectionString, Key, SASToken or Credential.
	ConnectionString storage.Secret
	Key              storage.Secret
	SASToken         storage.Secret
	Credential       Credential
	// ClientID selects a user-assigned managed identity (AZURE_CLIENT_ID)
	// for CredentialManagedIdentity; empty means the system-assigned one.
	ClientID string
	// CABundle is PEM data of extra trusted CAs.
	CABundle        []byte
	EncryptionScope string
	// ReadTimeout bounds the wait for a response once a request is sent,
	// and a download that receives nothing for that long; 0 means 60s.
	ReadTimeout time.Duration
}
