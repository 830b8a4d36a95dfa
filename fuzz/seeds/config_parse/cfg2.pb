
H
routing=*;

backend_fromrouter_prefix

prefix_separator::