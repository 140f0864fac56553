vcl 4.1;
# Varnish with its built-in caching logic in front of the sample upstream; only marks hits.
backend upstream { .host = "127.0.0.1"; .port = "18080"; }
sub vcl_deliver {
  if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; }
}
