#!/bin/bash
# Creates throw-away certificates for the test emulator in DIR:
#   ca.pem, ca.key          the test CA, which the daemon's ca_file names
#   server.pem, server.key  the emulator's certificate for 127.0.0.1 and
#                           localhost, issued by the test CA
#   wrong-name.pem/.key     issued by the test CA for another host name
#   other-ca.pem/.key       a second CA that the daemon does not trust
#   wrong-ca.pem/.key       a certificate for 127.0.0.1 issued by other-ca
# The keys are for the test emulator only.  Usage: make-certs.sh DIR
set -eu

dir=${1:?usage: make-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
if [ -s server.pem ] && [ -s wrong-ca.pem ] && [ -s wrong-name.pem ]; then
	exit 0
fi

# new_ca NAME SUBJECT
new_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$1.key" -out "$1.pem" -days 2 -subj "$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# new_server NAME CA SUBJECT_ALT_NAME
new_server() {
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$1.key" -out "$1.csr" \
		-subj "/CN=cloudapp-login test server" 2>/dev/null
	printf '%s\n' "subjectAltName=$3" "basicConstraints=CA:FALSE" \
		"extendedKeyUsage=serverAuth" > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
		-CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext" \
		2>/dev/null
	rm -f "$1.csr" "$1.ext" "$2.srl"
}

new_ca ca "/CN=cloudapp-login test CA"
new_server server ca "IP:127.0.0.1,DNS:localhost"
new_server wrong-name ca "DNS:gateway.test.invalid"
new_ca other-ca "/CN=cloudapp-login untrusted test CA"
new_server wrong-ca other-ca "IP:127.0.0.1,DNS:localhost"
chmod 0600 ./*.key
