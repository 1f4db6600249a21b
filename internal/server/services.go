package server

import (
	"github.com/kumo-cloud/kumo/internal/config"
	"github.com/kumo-cloud/kumo/internal/service"
)

// extraServices builds the API services beside identity.
func extraServices(deps service.Deps, cfg *config.Config) ([]service.API, error) {
	return nil, nil
}
