"""Entities are classified by their stored type through the city model — an id claiming a type counts for nothing."""

from __future__ import annotations

import pytest

from machimori.governance.catalog import load_catalog
from machimori.governance.model.loader import load_model
from machimori.governance.model.schema import Dataset, NgsiLdBinding
from machimori.governance.workflow import example_town
from machimori.hub.catalogue import UNCLASSIFIED, Catalogue
from machimori.hub.jsonld import Contexts, DocumentLoader
from machimori.policy import DataType

CONTEXTS = Contexts(DocumentLoader())
WATCH = "https://minatomachi.example/ngsi-ld/WatchedPosition"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    model = load_model(example_town(), load_catalog(()))
    return Catalogue.from_datasets(model.datasets, CONTEXTS)


def test_the_example_towns_bindings_classify_by_type(catalogue: Catalogue) -> None:
    water = catalogue.classify(["https://smartdatamodels.org/dataModel.Environment/WaterObserved"])
    assert (water.dataset, water.data_type, water.owner) == ("water-level", DataType.open, "minato-bousai")
    watch = catalogue.classify([WATCH])
    assert watch.dataset == "watch-location" and watch.data_type is DataType.closed
    assert watch.is_personal("https://uri.etsi.org/ngsi-ld/location")
    assert not watch.is_personal("https://uri.etsi.org/ngsi-ld/default-context/name")
    assert watch.resident_attribute == "https://minatomachi.example/ngsi-ld/refResident"


def test_an_unknown_type_is_closed_data_of_nobody(catalogue: Catalogue) -> None:
    assert catalogue.classify(["https://example.org/OpenThing"]) is UNCLASSIFIED
    assert UNCLASSIFIED.data_type is DataType.closed and UNCLASSIFIED.owner is None


def test_of_several_types_the_strictest_classification_applies(catalogue: Catalogue) -> None:
    both = catalogue.classify(["https://smartdatamodels.org/dataModel.Environment/WaterObserved", WATCH])
    assert both.dataset == "watch-location"


def test_a_personal_dataset_without_attribute_list_is_personal_throughout() -> None:
    dataset = Dataset(
        id="footfall",
        data_type="open",
        personal=True,
        ngsi_ld=NgsiLdBinding(types=["Footfall"], context=None),
    )
    classification = Catalogue.from_datasets([dataset], CONTEXTS).classify(
        ["https://uri.etsi.org/ngsi-ld/default-context/Footfall"]
    )
    assert classification.data_type is DataType.personal and classification.is_personal("anything")


def test_two_datasets_claiming_one_type_is_an_error() -> None:
    binding = NgsiLdBinding(types=["Thing"])
    datasets = [
        Dataset(id="a", data_type="open", ngsi_ld=binding),
        Dataset(id="b", data_type="closed", ngsi_ld=binding),
    ]
    with pytest.raises(ValueError, match="two datasets"):
        Catalogue.from_datasets(datasets, CONTEXTS)
