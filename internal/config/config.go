// Package config turns what a user gives (a destination URL, barman-cloud
// flags, environment variables, or an ObjectStore with its Secrets) into
// one typed storage configuration. Drivers receive it and read nothing else.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/bcloud-dev/bcloud/internal/storage/azure"
	"github.com/bcloud-dev/bcloud/internal/storage/fs"
	"github.com/bcloud-dev/bcloud/internal/storage/gcs"
	"github.com/bcloud-dev/bcloud/internal/storage/s3"
)

// Provider names a storage backend with barman-cloud's --cloud-provider values.
type Provider string

// Providers.
const (
	ProviderS3    Provider = "aws-s3"
	ProviderAzure Provider = "azure-blob-storage"
	ProviderGCS   Provider = "google-cloud-storage"
	ProviderFile  Provider = "file"
)

// ParseProvider validates a --cloud-provider value.
func ParseProvider(s string) (Provider, error) {
	switch p := Provider(s); p {
	case ProviderS3, ProviderAzure, ProviderGCS, ProviderFile:
		return p, nil
	case "":
		return "", nil
	}
	return "", fmt.Errorf("unknown --cloud-provider %q: use aws-s3, azure-blob-storage, google-cloud-storage or file", s)
}

// Storage is the resolved configuration of one destination.
type Storage struct {
	Provider Provider
	// Destination is the URL as the user gave it, for messages.
	Destination string
	// Prefix is the path inside the bucket or container ("" for none).
	Prefix string

	S3    s3.Config
	Azure azure.Config
	GCS   gcs.Config
	File  fs.Config
}

// Location is a parsed destination URL, before credentials.
type Location struct {
	Provider Provider
	// Bucket is the S3/GCS bucket, the Azure container, or the fs root.
	Bucket string
	Prefix string
	// AzureAccount and AzureAccountURL are set for Azure destinations.
	AzureAccount    string
	AzureAccountURL string
	// AzureEmulated is true for the http(s)://host:port/<account>/... form.
	AzureEmulated bool
}

// ParseDestination parses a barman-cloud destination URL. provider may be
// empty, in which case it is inferred from the URL (an extension: barman-cloud
// always assumes aws-s3); a given provider must agree with the URL.
func ParseDestination(raw string, provider Provider) (Location, error) {
	if strings.TrimSpace(raw) == "" {
		return Location{}, errors.New("destination URL is empty: give one such as s3://bucket/path or file:///var/backups")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, fmt.Errorf("destination %q is not a URL (%w): give one such as s3://bucket/path", raw, unwrapURLError(err))
	}
	switch u.Scheme {
	case "s3":
		if err := agree(raw, provider, ProviderS3); err != nil {
			return Location{}, err
		}
		if u.Host == "" {
			return Location{}, fmt.Errorf("destination %q has no bucket: use s3://<bucket>/<path>", raw)
		}
		return Location{Provider: ProviderS3, Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}, nil
	case "gs":
		if err := agree(raw, provider, ProviderGCS); err != nil {
			return Location{}, err
		}
		if u.Host == "" {
			return Location{}, fmt.Errorf("destination %q has no bucket: use gs://<bucket>/<path>", raw)
		}
		return Location{Provider: ProviderGCS, Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}, nil
	case "file":
		if err := agree(raw, provider, ProviderFile); err != nil {
			return Location{}, err
		}
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("destination %q names host %q: use file:///absolute/path (three slashes)", raw, u.Host)
		}
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			return Location{}, fmt.Errorf("destination %q has no absolute path: use file:///absolute/path", raw)
		}
		return Location{Provider: ProviderFile, Bucket: u.Path}, nil
	case "http", "https":
		return parseHTTP(raw, u, provider)
	case "":
		return Location{}, fmt.Errorf("destination %q has no scheme: use s3://, gs://, https:// (Azure) or file://", raw)
	}
	return Location{}, fmt.Errorf("destination %q has unknown scheme %q: use s3://, gs://, https:// (Azure) or file://", raw, u.Scheme)
}

func parseHTTP(raw string, u *url.URL, provider Provider) (Location, error) {
	segs := splitPath(u.Path)
	if u.Host == "console.cloud.google.com" && len(segs) >= 3 && segs[0] == "storage" && segs[1] == "browser" {
		if err := agree(raw, provider, ProviderGCS); err != nil {
			return Location{}, err
		}
		return Location{Provider: ProviderGCS, Bucket: segs[2], Prefix: strings.Join(segs[3:], "/")}, nil
	}
	if provider != "" && provider != ProviderAzure {
		return Location{}, fmt.Errorf("destination %q is an http(s) URL, which only Azure uses: pass --cloud-provider azure-blob-storage or use s3:// / gs://", raw)
	}
	host := u.Hostname()
	if strings.HasSuffix(host, ".blob.core.windows.net") {
		if len(segs) < 1 {
			return Location{}, fmt.Errorf("destination %q has no container: use https://<account>.blob.core.windows.net/<container>/<path>", raw)
		}
		account := strings.SplitN(host, ".", 2)[0]
		return Location{
			Provider: ProviderAzure, Bucket: segs[0], Prefix: strings.Join(segs[1:], "/"),
			AzureAccount: account, AzureAccountURL: "https://" + u.Host,
		}, nil
	}
	if len(segs) < 2 {
		return Location{}, fmt.Errorf("destination %q lacks an account or container: use http(s)://<host>:<port>/<account>/<container>/<path> for an emulator, or https://<account>.blob.core.windows.net/<container>/<path>", raw)
	}
	return Location{
		Provider: ProviderAzure, Bucket: segs[1], Prefix: strings.Join(segs[2:], "/"),
		AzureAccount: segs[0], AzureAccountURL: u.Scheme + "://" + u.Host + "/" + segs[0], AzureEmulated: true,
	}, nil
}

func agree(raw string, given, inferred Provider) error {
	if given != "" && given != inferred {
		return fmt.Errorf("destination %q is a %s URL but --cloud-provider is %s: make them match", raw, inferred, given)
	}
	return nil
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
