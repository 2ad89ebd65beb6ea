"""One exception root per package, all under the project's root."""
from __future__ import annotations

import pytest

from codec.errors import CodecError
from common.errors import SemanticDnsError
from engines.errors import EngineError
from nameserver.errors import NameserverError
from nameserver.resolver.errors import ResolverError
from routing.errors import RoutingError
from sdk.errors import SdkError
from zones.errors import ZonesError


@pytest.mark.parametrize("root", [CodecError, ZonesError, RoutingError, NameserverError, SdkError, EngineError])
def test_each_package_root_is_under_the_project_root(root: type) -> None:
    assert issubclass(root, SemanticDnsError) and root is not SemanticDnsError


def test_the_resolver_is_part_of_the_nameserver() -> None:
    assert issubclass(ResolverError, NameserverError)
