// Package localstack holds the LocalStack docker-compose file (for machines with Docker)
// and, under native/, the Docker-less local stack's setup. Its test keeps the compose
// file consistent with the variables and ports taxflow reads.
package localstack
