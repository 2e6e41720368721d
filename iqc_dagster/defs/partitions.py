import dagster as dg

#: One partition per album folder under the photo root; the album sensor adds new keys.
albums_partitions = dg.DynamicPartitionsDefinition(name="albums")
