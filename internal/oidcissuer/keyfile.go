package oidcissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyBits is the RSA modulus size used by GenerateKey.
const KeyBits = 2048

// GenerateKey returns a fresh RSA key suitable for New. 2048 bits is the
// RS256 minimum that verifiers accept and is fast enough for per-test keys.
func GenerateKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, KeyBits)
}

// LoadOrCreateKeyFile returns the RSA key stored at path as a PEM "PRIVATE
// KEY" (PKCS#8) block, generating and writing one with mode 0600 if the file
// does not exist. Dev mode uses it so that `rollcall serve` and
// `rollcall dev-token` share a key (and hence a kid) without configuration.
//
// The new file is written to a temporary name and hard-linked into place, so
// two processes starting at once never observe a half-written key, and the
// loser of the race adopts the winner's key rather than overwriting it.
func LoadOrCreateKeyFile(path string) (*rsa.PrivateKey, error) {
	key, err := readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}

	key, err = GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("oidcissuer: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("oidcissuer: marshal key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("oidcissuer: create key directory: %w", err)
	}
	if err := publishFile(path, data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first; use theirs.
			return readKeyFile(path)
		}
		return nil, fmt.Errorf("oidcissuer: write key file: %w", err)
	}
	return key, nil
}

// publishFile atomically creates path with data and mode 0600, failing with
// fs.ErrExist if path already exists.
func publishFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".oidc-key-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// Filesystems without hard links: fall back to an exclusive create.
		f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if ferr != nil {
			return ferr
		}
		if _, werr := f.Write(data); werr != nil {
			f.Close()
			return werr
		}
		return f.Close()
	}
	return nil
}

func readKeyFile(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("oidcissuer: %s: no PEM PRIVATE KEY block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("oidcissuer: %s: %w", path, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("oidcissuer: %s: key is %T, want RSA", path, parsed)
	}
	return key, nil
}
