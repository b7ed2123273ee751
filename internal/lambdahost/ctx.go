package lambdahost

import (
	"context"
	"time"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

type clientContextKey struct{}

// clientContextOf is the ClientContext an Invoke call carried, or "".
func clientContextOf(ctx context.Context) string {
	s, _ := ctx.Value(clientContextKey{}).(string)
	return s
}
