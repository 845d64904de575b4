"""Applications standing in for the systems at the edge: the agencies' APIs (``agency``) and the
national public service portal (``portal``), as real HTTP services implementing the documented
contracts, with latency and failure switches. They sit beside the gateway, above the core: they may
import the contracts and the gateway's signing, and nothing in the core imports them."""
