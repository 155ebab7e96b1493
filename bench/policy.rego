# The policy `make bench`'s gateway-policy target evaluates on every request: the kind a platform
# team writes (a model allow-list, a cap, a rule on the caller and the request), all of it computed
# for each request and none of it refusing the benchmark's.
package switchboard

import rego.v1

models := {"bench-model", "bench-mock"}

max_tokens := 4096

deny contains sprintf("key %s may not ask for more than 32768 tokens", [input.key]) if {
	input.max_tokens != null
	input.max_tokens > 32768
}

deny contains "prompt too long for this tenant" if input.estimated_input_tokens > 100000

deny contains "service accounts may not use this tenant" if input.identity.kind == "service_account"
