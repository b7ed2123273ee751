package temporalclient

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/taxflow/taxflow/internal/config"
)

type env map[string]string

func (e env) LookupEnv(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e env) Environ() []string {
	var out []string
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

func caPEM(t *testing.T) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestOptionsTakeTLSAndAPIKeyFromTheStandardVariables(t *testing.T) {
	cfg := config.Temporal{Address: "temporal.example:7233", Namespace: "taxflow", PayloadKey: base64.StdEncoding.EncodeToString(make([]byte, 32))}
	none := filepath.Join(t.TempDir(), "absent.toml")
	plain, err := Options(cfg, zerolog.Nop(), env{"TEMPORAL_CONFIG_FILE": none})
	if err != nil {
		t.Fatal(err)
	}
	if plain.ConnectionOptions.TLS != nil || plain.Credentials != nil || plain.HostPort != cfg.Address || plain.Namespace != "taxflow" || plain.DataConverter == nil {
		t.Fatalf("plain: %+v", plain)
	}
	secured, err := Options(cfg, zerolog.Nop(), env{"TEMPORAL_CONFIG_FILE": none, "TEMPORAL_API_KEY": "secret",
		"TEMPORAL_TLS_SERVER_CA_CERT_DATA": caPEM(t), "TEMPORAL_TLS_SERVER_NAME": "temporal.example"})
	if err != nil {
		t.Fatal(err)
	}
	if secured.ConnectionOptions.TLS == nil || secured.ConnectionOptions.TLS.RootCAs == nil ||
		secured.ConnectionOptions.TLS.ServerName != "temporal.example" || secured.Credentials == nil {
		t.Fatalf("TLS and API key not applied: %+v", secured.ConnectionOptions)
	}
	// A client certificate without its key is a configuration error, not a plain connection.
	cert := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(cert, []byte(caPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Options(cfg, zerolog.Nop(), env{"TEMPORAL_CONFIG_FILE": none, "TEMPORAL_TLS_CLIENT_CERT_PATH": cert}); err == nil || !strings.Contains(err.Error(), "TEMPORAL_TLS") {
		t.Fatalf("a certificate without a key: %v", err)
	}
}
