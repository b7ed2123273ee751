// Package temporalclient dials the Temporal frontend with taxflow's logger and data converter.
package temporalclient

import (
	"fmt"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/logging"
)

// Dial connects to Temporal. dc may be nil for the default data converter.
func Dial(c config.Temporal, log zerolog.Logger, dc converter.DataConverter) (client.Client, error) {
	opts := client.Options{
		HostPort:      c.Address,
		Namespace:     c.Namespace,
		Logger:        logging.NewTemporal(log.With().Str("component", "temporal").Logger()),
		DataConverter: dc,
	}
	cl, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", c.Address, c.Namespace, err)
	}
	return cl, nil
}
