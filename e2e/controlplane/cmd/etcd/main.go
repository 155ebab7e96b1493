// Command etcd is etcd's server (go.etcd.io/etcd/server/v3/etcdmain), built from the
// version k8s.io/kubernetes pins, because Debian bookworm's etcd-server is 3.4.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
