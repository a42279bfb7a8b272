#!/bin/sh
# mkcerts.sh DIR: the certificates of the TLS tests, made at test time into
# DIR (created if missing) with the openssl CLI; never committed. EC P-256
# keys, so the whole set takes a fraction of a second.
#
#   ca.pem ca.key                  the private CA fetchd is told to trust
#   leaf.pem leaf.key              127.0.0.1 and localhost (SAN IP and DNS), by ca
#   expired.pem expired.key        the same names, by ca, valid only in January 2020
#   wrong-name.pem wrong-name.key  by ca, for DNS:wrong.example only
#   self-signed.pem self-signed.key  127.0.0.1 and localhost, signed by itself
#   client-ca.pem client-ca.key    the CA an mTLS upstream requires clients to have
#   client.pem client.key          a client certificate (clientAuth) by client-ca
#   client-other.pem client-other.key  a client certificate by ca: not by client-ca
#
# openssl 3.0's x509 and req cannot put a certificate's validity in the past;
# `openssl ca -startdate -enddate` can, so the expired leaf goes through a
# minimal ca database in DIR/cadb.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
cd "$1"

cat > openssl.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[wrong_name]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
authorityKeyIdentifier = keyid
[self_signed]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[ca]
default_ca = cadb
[cadb]
database = cadb/index.txt
serial = cadb/serial
new_certs_dir = cadb
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
CNF

key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# ca NAME CN: a self-signed CA valid for two days
ca() {
	key "$1.key"
	openssl req -config openssl.cnf -x509 -new -key "$1.key" -subj "/CN=$2" \
		-days 2 -sha256 -extensions v3_ca -out "$1.pem"
}

# signed NAME CN SECTION CA: a certificate by CA, valid from now for two days
signed() {
	key "$1.key"
	openssl req -config openssl.cnf -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
	openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial \
		-days 2 -sha256 -extfile openssl.cnf -extensions "$3" -out "$1.pem" 2>/dev/null
	rm -f "$1.csr"
}

ca ca "fetchd test CA"
ca client-ca "fetchd test client CA"
signed leaf "127.0.0.1" leaf ca
signed wrong-name "wrong.example" wrong_name ca
signed client "fetchd test client" client client-ca
signed client-other "fetchd other client" client ca

key self-signed.key
openssl req -config openssl.cnf -x509 -new -key self-signed.key -subj "/CN=127.0.0.1" \
	-days 2 -sha256 -extensions self_signed -out self-signed.pem

key expired.key
openssl req -config openssl.cnf -new -key expired.key -subj "/CN=127.0.0.1" -out expired.csr
mkdir -p cadb
: > cadb/index.txt
echo 1000 > cadb/serial
openssl ca -config openssl.cnf -batch -notext -in expired.csr -out expired.pem \
	-startdate 20200101000000Z -enddate 20200201000000Z -extfile openssl.cnf \
	-extensions leaf 2>/dev/null
rm -f expired.csr
