"""``QueryOMS``: run attributes from ecaljenkins' run registry, and an ``omsapi`` client.

``get_run_attribute`` asks the configured registry (``ECAL_RUN_REGISTRY``: the
bundled catalogue by default, a catalogue file, or CMS OMS), so a script gets
the same answer the campaign commands work with. ``.oms`` is a client of
``omsapi``, the package CMS maintains, for the scripts that query OMS
resources themselves (``qom.oms.query('fills')``); it exists only when the
registry is OMS, and talks to the registry's OMS instance (``ECAL_OMS_URL``) with
a token of the same CERN SSO client (``ECAL_OMS_CLIENT_ID``/``_SECRET``), endpoint
(``ECAL_OMS_TOKEN_URL``) and audience (``ECAL_OMS_AUDIENCE``).

The registry itself does not use ``omsapi``: the README's migration section says why.
"""

from __future__ import annotations

import requests

from ecaljenkins.errors import ConfigError, NotFound, RegistryError
from ecaljenkins.names import did_you_mean
from ecaljenkins.registry import OmsRegistry, open_registry, parse_run
from ecaljenkins.settings import Settings


class QueryOMS:
    """``QueryOMS()``: the run registry of the environment's settings."""

    def __init__(self):
        self._settings = Settings.from_env()
        self.registry = open_registry(settings=self._settings)
        self._oms = None

    def get_run_attribute(self, run: int | str, attr: str):
        """The value of ``attr`` (an OMS attribute name: ``fill_number``, ``era``, ...)
        for ``run``; NotFound for an unknown run or attribute."""
        found = self.registry.runs([parse_run(str(run).strip())])[0]
        if attr not in found.attrs:
            raise NotFound(f"run {found.number} has no attribute {attr!r} in the run registry"
                           + did_you_mean(attr, found.attrs))
        return found.attrs[attr]

    @property
    def oms(self):
        """An ``omsapi.OMSAPI`` client, authenticated (the first time it is asked for)."""
        if self._oms is None:
            self._oms = self._connect()
        return self._oms

    def _connect(self):
        if not isinstance(self.registry, OmsRegistry):
            raise ConfigError("QueryOMS().oms is a client of CMS OMS, and the run registry is "
                              "a catalogue: set ECAL_RUN_REGISTRY=oms (with ECAL_OMS_CLIENT_ID "
                              "and ECAL_OMS_CLIENT_SECRET)")
        try:
            import omsapi
        except ImportError:
            raise ConfigError("QueryOMS().oms needs the CMS package omsapi: "
                              "pip install 'ecaljenkins[oms]'") from None
        registry = self.registry      # the same OMS instance, endpoint and audience
        client_id, secret = self._settings.oms_credentials()
        api_url, _, version = registry.base_url.rpartition("/")
        client = omsapi.OMSAPI(api_url=api_url, api_version=version, verbose=False)
        # omsapi reads its token endpoint from this module global only
        omsapi.cern_api_url = registry.token_url
        try:
            client.auth_oidc(client_id, secret, audience=registry.audience)
        except requests.RequestException as err:
            raise RegistryError(f"cannot reach CERN SSO at {omsapi.cern_api_url} through "
                                f"omsapi: {type(err).__name__}") from None
        except Exception:   # omsapi raises a bare Exception carrying the server's page
            raise RegistryError(f"CERN SSO refused the OMS client {client_id} (asked through "
                                "omsapi)") from None
        return client
