#!/bin/sh
# docker-credential-gce-metadata: a Docker credential helper for Artifact Registry on a Compute Engine
# VM, installed by the inngest-kit startup script. It speaks the docker-credential-helpers protocol:
#   get    reads a registry host on stdin, prints {"ServerURL", "Username", "Secret"} as JSON, where
#          the secret is a short-lived access token of the VM's own service account, read from the
#          metadata server at each call (Artifact Registry docs, "Configure authentication to
#          Artifact Registry for Docker": user `oauth2accesstoken`, password an access token).
#   list   prints {} (nothing is stored).
#   store, erase   refused: there is nothing to store, so no credential ever reaches a disk.
# GCE_METADATA_HOST moves the metadata server (the variable Google's auth libraries honour; tests).
set -eu

metadata_host=${GCE_METADATA_HOST:-metadata.google.internal}
token_url="http://$metadata_host/computeMetadata/v1/instance/service-accounts/default/token"

case "${1:-}" in
get)
	server=$(cat)
	case "$server" in
	"" | *[!A-Za-z0-9.:/_-]*)
		echo "docker-credential-gce-metadata: not a registry address: $server" >&2
		exit 1
		;;
	esac
	if ! response=$(curl --fail --silent --show-error --max-time 10 --retry 3 --header "Metadata-Flavor: Google" "$token_url"); then
		echo "docker-credential-gce-metadata: no access token from the metadata server ($token_url); is this a Compute Engine VM with a service account?" >&2
		exit 1
	fi
	token=$(printf '%s\n' "$response" | sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
	case "$token" in
	"" | *[!A-Za-z0-9._~+/=-]*)
		echo "docker-credential-gce-metadata: the metadata server's answer holds no access token" >&2
		exit 1
		;;
	esac
	printf '{"ServerURL":"%s","Username":"oauth2accesstoken","Secret":"%s"}\n' "$server" "$token"
	;;
list)
	echo "{}"
	;;
store | erase)
	cat >/dev/null
	echo "docker-credential-gce-metadata: $1 is not supported; tokens come from the metadata server at each pull" >&2
	exit 1
	;;
*)
	echo "usage: docker-credential-gce-metadata get|list" >&2
	exit 1
	;;
esac
