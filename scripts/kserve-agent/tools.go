//go:build tools

// Package tools pins the KServe agent command so `go build` can find it in this module.
package tools

import _ "github.com/kserve/kserve/cmd/agent"
