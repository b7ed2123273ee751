// Package temporalclient dials the Temporal frontend with taxflow's logger and the
// payload codec that encrypts every payload and failure message.
package temporalclient

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/converter"

	"github.com/taxflow/taxflow/internal/codec"
	"github.com/taxflow/taxflow/internal/config"
)

// DataConverter builds the encrypting data converter from the configured keys. Without
// a key it refuses: personal data must not reach Temporal's history in clear text.
func DataConverter(c config.Temporal) (converter.DataConverter, error) {
	cd, err := PayloadCodec(c)
	if err != nil {
		return nil, err
	}
	return codec.DataConverter(cd), nil
}

// PayloadCodec builds the payload codec from the configured keys (the codec server
// serves it as is).
func PayloadCodec(c config.Temporal) (*codec.Codec, error) {
	if c.PayloadKey == "" {
		return nil, errors.New("configuration: TAXFLOW_PAYLOAD_KEY is not set: payloads hold personal data and are encrypted; " +
			"set it to 32 random bytes, base64 (openssl rand -base64 32); `taxflow stack env` prints the local stack's")
	}
	key, err := codec.ParseKey(c.PayloadKey)
	if err != nil {
		return nil, fmt.Errorf("configuration: TAXFLOW_PAYLOAD_KEY %w", err)
	}
	var old [][]byte
	for i, o := range c.OldPayloadKeys {
		k, err := codec.ParseKey(o)
		if err != nil {
			return nil, fmt.Errorf("configuration: TAXFLOW_PAYLOAD_KEYS_OLD (key %d) %w", i+1, err)
		}
		old = append(old, k)
	}
	return codec.New(key, old...)
}

// Options builds the client options: connection security (TLS, mTLS client certificate,
// API key, gRPC metadata) from the SDK's standard configuration — the TEMPORAL_TLS_*,
// TEMPORAL_API_KEY, TEMPORAL_GRPC_META_* variables and the TEMPORAL_CONFIG_FILE profile
// read by contrib/envconfig — and address, namespace and the encrypting data converter
// from taxflow's configuration. env nil reads the process environment.
func Options(c config.Temporal, log zerolog.Logger, env envconfig.EnvLookup) (client.Options, error) {
	opts, err := envconfig.LoadClientOptions(envconfig.LoadClientOptionsRequest{EnvLookup: env})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal connection settings (TEMPORAL_TLS_*, TEMPORAL_API_KEY, TEMPORAL_CONFIG_FILE): %w", err)
	}
	dc, err := DataConverter(c)
	if err != nil {
		return client.Options{}, err
	}
	opts.HostPort, opts.Namespace = c.Address, c.Namespace
	opts.Logger = NewLogger(log.With().Str("component", "temporal").Logger())
	opts.DataConverter, opts.FailureConverter = dc, codec.FailureConverter(dc)
	return opts, nil
}

// Dial connects to Temporal with the encrypting data converter.
func Dial(c config.Temporal, log zerolog.Logger) (client.Client, error) {
	return DialWith(c, log, nil)
}

// DialWith is Dial with the options adjusted by adjust first (metrics handler, tracing
// interceptor); adjust nil changes nothing.
func DialWith(c config.Temporal, log zerolog.Logger, adjust func(*client.Options)) (client.Client, error) {
	opts, err := Options(c, log, nil)
	if err != nil {
		return nil, err
	}
	if adjust != nil {
		adjust(&opts)
	}
	cl, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", c.Address, c.Namespace, err)
	}
	return cl, nil
}
