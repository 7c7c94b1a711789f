"""SIP for softphones and PBXs: credentials, digest authentication, and a redirect front end."""
