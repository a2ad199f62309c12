package lifecycle

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"regexp"
)

// Client secrets of identity providers are stored sealed with AES-256-GCM
// under ROLLCALL_SECRET_KEY, or as the name of an environment variable that
// holds them, so a database dump alone never reveals one.

var secretEnvName = regexp.MustCompile(`^ROLLCALL_IDP_SECRET_[A-Z0-9_]{1,64}$`)

func (s *Service) sealSecret(plain string) (string, error) {
	if len(s.secretKey) != 32 {
		return "", errors.New("no secret key configured")
	}
	block, err := aes.NewCipher(s.secretKey)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, []byte(plain), nil)), nil
}

func (s *Service) openSecret(sealed string) (string, error) {
	if len(s.secretKey) != 32 {
		return "", errors.New("no secret key configured")
	}
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", err
	}
	block, err := aes.NewCipher(s.secretKey)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	if len(b) < gcm.NonceSize() {
		return "", errors.New("sealed secret too short")
	}
	out, err := gcm.Open(nil, b[:gcm.NonceSize()], b[gcm.NonceSize():], nil)
	return string(out), err
}

// ClientSecret returns a provider's client secret for the code exchange.
func (s *Service) clientSecret(enc, env *string) (string, error) {
	switch {
	case enc != nil:
		return s.openSecret(*enc)
	case env != nil:
		v := s.getenv(*env)
		if v == "" {
			return "", errors.New("client secret variable is empty")
		}
		return v, nil
	}
	return "", nil // a public client (PKCE only)
}
