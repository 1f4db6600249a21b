package image

// The JSON schemas served at /v2/schemas/*, describing Kumo's images the
// way Glance describes its own (draft-4 style, with Glance's readOnly and
// is_base annotations).

const uuidPattern = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"

func nullable(t string) []any { return []any{"null", t} }

func enumOf(vals []string, withNull bool) []any {
	var out []any
	if withNull {
		out = append(out, nil)
	}
	for _, v := range vals {
		out = append(out, v)
	}
	return out
}

func imageProperties() map[string]any {
	ro := func(desc string, typ any, extra ...any) map[string]any {
		m := map[string]any{"description": desc, "readOnly": true, "type": typ}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	extraProp := func(desc string, typ any, extra ...any) map[string]any {
		m := map[string]any{"description": desc, "is_base": false, "type": typ}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	return map[string]any{
		"id":               map[string]any{"description": "An identifier for the image", "pattern": uuidPattern, "type": "string"},
		"name":             map[string]any{"description": "Descriptive name for the image", "maxLength": 255, "type": nullable("string")},
		"status":           ro("Status of the image", "string", "enum", enumOf(allStatuses, false)),
		"visibility":       map[string]any{"description": "Scope of image accessibility", "enum": enumOf([]string{VisCommunity, VisPublic, VisPrivate, VisShared}, false), "type": "string"},
		"protected":        map[string]any{"description": "If true, image will not be deletable.", "type": "boolean"},
		"os_hidden":        map[string]any{"description": "If true, image will not appear in default image list response.", "type": "boolean"},
		"checksum":         ro("md5 hash of image contents.", nullable("string"), "maxLength", 32),
		"os_hash_algo":     ro("Algorithm to calculate the os_hash_value", nullable("string"), "maxLength", 64),
		"os_hash_value":    ro("Hexdigest of the image contents using the algorithm specified by the os_hash_algo", nullable("string"), "maxLength", 128),
		"owner":            map[string]any{"description": "Owner of the image", "maxLength": 255, "type": nullable("string")},
		"size":             ro("Size of image file in bytes", nullable("integer")),
		"virtual_size":     ro("Virtual size of image in bytes", nullable("integer")),
		"container_format": map[string]any{"description": "Format of the container", "enum": enumOf(containerFormats, true), "type": nullable("string")},
		"disk_format":      map[string]any{"description": "Format of the disk", "enum": enumOf(diskFormats, true), "type": nullable("string")},
		"created_at":       ro("Date and time of image registration", "string"),
		"updated_at":       ro("Date and time of the last image modification", "string"),
		"tags":             map[string]any{"description": "List of strings related to the image", "items": map[string]any{"maxLength": 255, "type": "string"}, "type": "array"},
		"direct_url":       ro("URL to access the image file kept in external store", "string"),
		"min_ram":          map[string]any{"description": "Amount of ram (in MB) required to boot image.", "type": "integer", "minimum": 0},
		"min_disk":         map[string]any{"description": "Amount of disk space (in GB) required to boot image.", "type": "integer", "minimum": 0},
		"self":             ro("An image self url", "string"),
		"file":             ro("An image file url", "string"),
		"stores":           ro("Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers.", "string"),
		"schema":           ro("An image schema url", "string"),
		"locations": map[string]any{"description": "A set of URLs to access the image file kept in external store", "type": "array",
			"items": map[string]any{"type": "object", "required": []any{"url", "metadata"}, "properties": map[string]any{
				"url": map[string]any{"type": "string", "maxLength": 255}, "metadata": map[string]any{"type": "object"}}}},
		"kernel_id":                             extraProp("ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.", nullable("string"), "pattern", uuidPattern),
		"ramdisk_id":                            extraProp("ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.", nullable("string"), "pattern", uuidPattern),
		"instance_uuid":                         extraProp("Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)", "string"),
		"architecture":                          extraProp("Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html", "string"),
		"os_distro":                             extraProp("Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html", "string"),
		"os_version":                            extraProp("Operating system version as specified by the distributor.", "string"),
		"description":                           extraProp("A human-readable string describing this image.", "string"),
		"cinder_encryption_key_id":              extraProp("Identifier in the OpenStack Key Management Service for the encryption key for the Block Storage Service to use when mounting a volume created from this image", "string"),
		"cinder_encryption_key_deletion_policy": extraProp("States the condition under which the Image Service will delete the object associated with the 'cinder_encryption_key_id' image property.  If this property is missing, the Image Service will take no action", "string", "enum", []any{"on_image_deletion", "do_not_delete"}),
	}
}

func imageSchema() map[string]any {
	return map[string]any{
		"name":                 "image",
		"properties":           imageProperties(),
		"additionalProperties": map[string]any{"type": "string"},
		"links": []any{
			map[string]any{"href": "{self}", "rel": "self"},
			map[string]any{"href": "{file}", "rel": "enclosure"},
			map[string]any{"href": "{schema}", "rel": "describedby"},
		},
	}
}

func imagesSchema() map[string]any {
	return map[string]any{
		"name": "images",
		"properties": map[string]any{
			"images": map[string]any{"type": "array", "items": imageSchema()},
			"schema": map[string]any{"type": "string"},
			"first":  map[string]any{"type": "string"},
			"next":   map[string]any{"type": "string"},
		},
		"links": []any{
			map[string]any{"href": "{first}", "rel": "first"},
			map[string]any{"href": "{next}", "rel": "next"},
			map[string]any{"href": "{schema}", "rel": "describedby"},
		},
	}
}

func memberSchema() map[string]any {
	return map[string]any{
		"name": "member",
		"properties": map[string]any{
			"created_at": map[string]any{"description": "Date and time of image member creation", "type": "string"},
			"image_id":   map[string]any{"description": "An identifier for the image", "pattern": uuidPattern, "type": "string"},
			"member_id":  map[string]any{"description": "An identifier for the image member (tenantId)", "type": "string"},
			"status":     map[string]any{"description": "The status of this image member", "enum": []any{MemberPending, MemberAccepted, MemberRejected}, "type": "string"},
			"updated_at": map[string]any{"description": "Date and time of last modification of image member", "type": "string"},
			"schema":     map[string]any{"readOnly": true, "type": "string"},
		},
	}
}

func membersSchema() map[string]any {
	return map[string]any{
		"name": "members",
		"properties": map[string]any{
			"members": map[string]any{"type": "array", "items": memberSchema()},
			"schema":  map[string]any{"type": "string"},
		},
		"links": []any{map[string]any{"href": "{schema}", "rel": "describedby"}},
	}
}
