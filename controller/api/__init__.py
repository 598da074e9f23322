"""HTTP edge of the controller: thin routers over the domain packages."""
