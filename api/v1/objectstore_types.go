package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ObjectStore is the Schema for the objectstores API.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
type ObjectStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`

	// Specification of the desired behavior of the ObjectStore.
	// More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status
	Spec ObjectStoreSpec `json:"spec"`

	// Most recently observed status of the ObjectStore. This data may not be up to
	// date. Populated by the system. Read-only.
	// More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status
	// +optional
	Status ObjectStoreStatus `json:"status,omitempty"`
}

// ObjectStoreList contains a list of ObjectStore.
//
// +kubebuilder:object:root=true
type ObjectStoreList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ObjectStore `json:"items"`
}

// ObjectStoreSpec defines the desired state of an ObjectStore.
type ObjectStoreSpec struct {
	// The configuration for the barman-cloud tool suite
	//
	// Upstream rule: the server name comes from the Cluster, never from here.
	// +kubebuilder:validation:XValidation:rule="!has(self.serverName)",fieldPath=".serverName",reason="FieldValueForbidden",message="use the 'serverName' plugin parameter in the Cluster resource"
	//
	// bcloud rules: exactly one provider, with complete credentials.
	// +kubebuilder:validation:XValidation:rule="self.destinationPath.startsWith('file://') || has(self.s3Credentials) || has(self.azureCredentials) || has(self.googleCredentials)",reason="FieldValueRequired",message="set one of spec.configuration.s3Credentials, azureCredentials or googleCredentials (only a file:// destinationPath takes none)"
	// +kubebuilder:validation:XValidation:rule="(has(self.s3Credentials) ? 1 : 0) + (has(self.azureCredentials) ? 1 : 0) + (has(self.googleCredentials) ? 1 : 0) <= 1",reason="FieldValueForbidden",message="set only one of spec.configuration.s3Credentials, azureCredentials or googleCredentials: remove the others"
	// +kubebuilder:validation:XValidation:rule="!self.destinationPath.startsWith('file://') || !(has(self.s3Credentials) || has(self.azureCredentials) || has(self.googleCredentials))",reason="FieldValueForbidden",message="a file:// spec.configuration.destinationPath takes no credentials: remove s3Credentials, azureCredentials and googleCredentials"
	//
	// S3: role XOR a complete key pair.
	// +kubebuilder:validation:XValidation:rule="!has(self.s3Credentials) || !has(self.s3Credentials.accessKeyId) || has(self.s3Credentials.secretAccessKey)",fieldPath=".s3Credentials.secretAccessKey",reason="FieldValueRequired",message="spec.configuration.s3Credentials.secretAccessKey is required when accessKeyId is set"
	// +kubebuilder:validation:XValidation:rule="!has(self.s3Credentials) || !has(self.s3Credentials.secretAccessKey) || has(self.s3Credentials.accessKeyId)",fieldPath=".s3Credentials.accessKeyId",reason="FieldValueRequired",message="spec.configuration.s3Credentials.accessKeyId is required when secretAccessKey is set"
	// +kubebuilder:validation:XValidation:rule="!has(self.s3Credentials) || (has(self.s3Credentials.inheritFromIAMRole) && self.s3Credentials.inheritFromIAMRole) || has(self.s3Credentials.accessKeyId) || has(self.s3Credentials.secretAccessKey)",fieldPath=".s3Credentials",reason="FieldValueRequired",message="spec.configuration.s3Credentials needs accessKeyId and secretAccessKey, or inheritFromIAMRole: true"
	// +kubebuilder:validation:XValidation:rule="!has(self.s3Credentials) || !(has(self.s3Credentials.inheritFromIAMRole) && self.s3Credentials.inheritFromIAMRole) || !(has(self.s3Credentials.accessKeyId) || has(self.s3Credentials.secretAccessKey) || has(self.s3Credentials.sessionToken))",fieldPath=".s3Credentials.inheritFromIAMRole",reason="FieldValueForbidden",message="spec.configuration.s3Credentials: inheritFromIAMRole excludes accessKeyId, secretAccessKey and sessionToken: remove one or the other"
	//
	// Azure: a connection string (which wins over the storage* fields, as in
	// barman-cloud, so the upstream all-fields example applies), an account
	// with a key or a SAS token, or an identity.
	// +kubebuilder:validation:XValidation:rule="!has(self.azureCredentials) || has(self.azureCredentials.connectionString) || has(self.azureCredentials.storageKey) || has(self.azureCredentials.storageSasToken) || (has(self.azureCredentials.inheritFromAzureAD) && self.azureCredentials.inheritFromAzureAD) || (has(self.azureCredentials.useDefaultAzureCredentials) && self.azureCredentials.useDefaultAzureCredentials)",fieldPath=".azureCredentials",reason="FieldValueRequired",message="spec.configuration.azureCredentials needs one of connectionString, storageAccount with storageKey or storageSasToken, inheritFromAzureAD: true or useDefaultAzureCredentials: true"
	// +kubebuilder:validation:XValidation:rule="!has(self.azureCredentials) || ((has(self.azureCredentials.inheritFromAzureAD) && self.azureCredentials.inheritFromAzureAD) ? 1 : 0) + ((has(self.azureCredentials.useDefaultAzureCredentials) && self.azureCredentials.useDefaultAzureCredentials) ? 1 : 0) + ((has(self.azureCredentials.connectionString) || has(self.azureCredentials.storageKey) || has(self.azureCredentials.storageSasToken)) ? 1 : 0) <= 1",fieldPath=".azureCredentials",reason="FieldValueForbidden",message="spec.configuration.azureCredentials: inheritFromAzureAD, useDefaultAzureCredentials and the connectionString/storageKey/storageSasToken Secrets exclude each other: keep one"
	// +kubebuilder:validation:XValidation:rule="!has(self.azureCredentials) || has(self.azureCredentials.connectionString) || !has(self.azureCredentials.storageKey) || !has(self.azureCredentials.storageSasToken)",fieldPath=".azureCredentials.storageSasToken",reason="FieldValueForbidden",message="spec.configuration.azureCredentials: set storageKey or storageSasToken, not both"
	// +kubebuilder:validation:XValidation:rule="!has(self.azureCredentials) || has(self.azureCredentials.connectionString) || !(has(self.azureCredentials.storageKey) || has(self.azureCredentials.storageSasToken)) || has(self.azureCredentials.storageAccount)",fieldPath=".azureCredentials.storageAccount",reason="FieldValueRequired",message="spec.configuration.azureCredentials.storageAccount is required with storageKey or storageSasToken"
	//
	// GCS: key file XOR workload identity.
	// +kubebuilder:validation:XValidation:rule="!has(self.googleCredentials) || has(self.googleCredentials.applicationCredentials) != (has(self.googleCredentials.gkeEnvironment) && self.googleCredentials.gkeEnvironment)",fieldPath=".googleCredentials",reason="FieldValueInvalid",message="spec.configuration.googleCredentials needs exactly one of applicationCredentials or gkeEnvironment: true"
	Configuration BarmanObjectStoreConfiguration `json:"configuration"`

	// RetentionPolicy is the retention policy to be used for backups
	// and WALs (i.e. '60d'). The retention policy is expressed in the form
	// of `XXu` where `XX` is a positive integer and `u` is in `[dwm]` -
	// days, weeks, months.
	// +kubebuilder:validation:Pattern=^[1-9][0-9]*[dwm]$
	// +optional
	RetentionPolicy string `json:"retentionPolicy,omitempty"`

	// The configuration for the sidecar that runs in the instance pods
	// +optional
	InstanceSidecarConfiguration InstanceSidecarConfiguration `json:"instanceSidecarConfiguration,omitempty,omitzero"` // omitzero: a typed update never adds it, and so its defaults
}

// InstanceSidecarConfiguration defines the configuration for the sidecar
// that runs in the instance pods.
type InstanceSidecarConfiguration struct {
	// The environment to be explicitly passed to the sidecar
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// The retentionCheckInterval defines the frequency at which the
	// system checks and enforces retention policies.
	// +kubebuilder:default:=1800
	// +optional
	RetentionPolicyIntervalSeconds int `json:"retentionPolicyIntervalSeconds,omitempty"`

	// Resources define cpu/memory requests and limits for the sidecar
	// that runs in the instance pods.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty,omitzero"`

	// AdditionalContainerArgs is an optional list of command-line arguments
	// to be passed to the sidecar container when it starts.
	// The provided arguments are appended to the container's default arguments.
	// +kubebuilder:validation:XValidation:rule="!self.exists(a, a.startsWith('--log-level'))",reason="FieldValueForbidden",message="do not set --log-level in additionalContainerArgs; use spec.instanceSidecarConfiguration.logLevel"
	// +optional
	AdditionalContainerArgs []string `json:"additionalContainerArgs,omitempty"`

	// The log level for PostgreSQL instances. Valid values are: `error`,
	// `warning`, `info` (default), `debug`, `trace`
	// +kubebuilder:default:=info
	// +kubebuilder:validation:Enum:=error;warning;info;debug;trace
	// +optional
	LogLevel string `json:"logLevel,omitempty"`
}

// ObjectStoreStatus defines the observed state of an ObjectStore.
type ObjectStoreStatus struct {
	// ServerRecoveryWindow maps each server to its recovery window
	// +optional
	ServerRecoveryWindow map[string]RecoveryWindow `json:"serverRecoveryWindow,omitempty"`
}

// RecoveryWindow represents the time span between the first
// recoverability point and the last successful backup of a PostgreSQL
// server, defining the period during which data can be restored.
type RecoveryWindow struct {
	// The first recoverability point in a PostgreSQL server refers to
	// the earliest point in time to which the database can be
	// restored.
	// +optional
	FirstRecoverabilityPoint *metav1.Time `json:"firstRecoverabilityPoint,omitempty"`

	// The last successful backup time
	// +optional
	LastSuccessfulBackupTime *metav1.Time `json:"lastSuccessfulBackupTime,omitempty"`

	// The last failed backup time
	// +optional
	LastFailedBackupTime *metav1.Time `json:"lastFailedBackupTime,omitempty"`
}

func init() {
	SchemeBuilder.Register(&ObjectStore{}, &ObjectStoreList{})
}
